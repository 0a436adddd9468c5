/*
 * options.h - command line of check_smtp_ports, parsed into one struct.
 *
 * Probe options are the core's vocabulary (common/options.c) under the
 * check's spelling; only thresholds, -t's STATE, -v, --require, --policy
 * and the AUTH secret are the check's own. Parsing is pure: no network, no
 * output. main() prints the error text and the usage line on OPTS_ERROR.
 */
#ifndef NAGIOS_OPTIONS_H
#define NAGIOS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "range.h"
#include "smtp_probe.h"

/* The ports when neither -p nor --policy is given (see the name map). */
#define OPTS_DEFAULT_PORTS "587,465"

/* Environment variable read for the AUTH secret when no file is given. */
#define OPTS_DEFAULT_PASSWORD_ENV "SMTP_PROBE_PASSWORD"

/* Output size caps by verbosity: long output is cut to fit, perfdata never. */
#define OPTS_CAP_DEFAULT 8192u /* -v 0 and 1 */
#define OPTS_CAP_VV 65536u     /* -vv: chain details */
#define OPTS_CAP_VVV 262144u   /* -vvv: the dialogue of every probe */

/* --app-setting options at most. */
#define OPTS_MAX_APP_SETTINGS 32

/* What main() should do after parsing. */
enum opts_action {
  OPTS_RUN,     /* probe and report */
  OPTS_HELP,    /* print the help text, exit UNKNOWN */
  OPTS_VERSION, /* print the version, exit UNKNOWN */
  OPTS_ERROR    /* print err and the usage line, exit UNKNOWN */
};

/* Everything the command line says. */
struct check_opts {
  struct sp_request req;             /* the probe request (strings in argv) */
  struct range warn[SP_PHASE_COUNT]; /* warning range per phase (-w: total) */
  bool have_warn[SP_PHASE_COUNT];    /* warn[phase] is set */
  struct range crit[SP_PHASE_COUNT]; /* critical range per phase (-c: total) */
  bool have_crit[SP_PHASE_COUNT];    /* crit[phase] is set */
  enum sp_state timeout_state;       /* state for timeout codes (-t S:STATE) */
  bool require_any;          /* --require any: one OK result is enough */
  int verbose;               /* -v count, 0..3 */
  size_t output_cap;         /* bytes of output at most (see caps) */
  const char *password_file; /* --auth-password-file */
  const char *password_env;  /* --auth-password-env (default above) */
  char secret[512];          /* the password or token, loaded once */
  char secret_warning[256];  /* e.g. a secret file is world-readable */
  const char *policy_file;   /* --policy */
  struct sp_policy *policy;  /* --policy, loaded (free with opts_free) */

  /* Submission service discovery (--domain-submission, RFC 6186). */
  const char *srv_domain;     /* the domain, or NULL */
  struct sp_srv_set srv;      /* what its SRV records say */
  bool srv_none;              /* it publishes no service ("." targets) */
  char srv_text[SP_MAX_TEXT]; /* that finding, or what was left out */

  /* The app-settings check (--app-*): the check's own options. */
  bool app;                  /* an --app-* option was given */
  const char *app_url;       /* --app-url */
  const char *app_file;      /* --app-settings-file */
  const char *app_framework; /* --app-framework (default generic) */
  const char *app_set[OPTS_MAX_APP_SETTINGS]; /* --app-setting, in order */
  int napp_set;                               /* how many app_set[] */
  struct sp_app_settings app_settings;        /* parsed and resolved */
  char app_verdict[SP_MAX_TEXT]; /* the verdict for an ok port, shown on
                                    the first line (set after the probe) */
};

struct option; /* <getopt.h> */

/* Free what parsing loaded (the policy) and wipe the secret. */
void opts_free(struct check_opts *o);

/* Parse argv into o (getopt_long; safe to call repeatedly). Returns the
 * action; on OPTS_ERROR err holds one line naming the option. */
enum opts_action opts_parse(int argc, char **argv, struct check_opts *o,
                            char *err, size_t errlen);

/* Parse a state word (OK, WARNING, CRITICAL, UNKNOWN, any case) or digit
 * 0-3; -1 when it is neither. */
int opts_parse_state(const char *s);

/* The getopt_long table the check accepts, ended by a NULL name. */
const struct option *opts_long_options(void);

/* The one usage line (ends with a newline). */
const char *opts_usage(void);

/* The full help text (ends with a newline). */
const char *opts_help(void);

#endif /* NAGIOS_OPTIONS_H */
