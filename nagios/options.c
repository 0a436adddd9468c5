/*
 * options.c - command line parsing for check_smtp_ports (getopt_long).
 */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Codes for options that only have a long form. */
enum {
  OPT_TLS = 256,
  OPT_ROLE,
  OPT_CAFILE,
  OPT_SNI,
  OPT_NO_VERIFY,
  OPT_EHLO,
  OPT_SOURCE,
  OPT_REQUIRE,
  OPT_ALL_ADDRESSES,
  OPT_BANNER_WAIT,
  OPT_NO_TLS_TRIAL,
  OPT_DNS_SERVER,
  OPT_PHASE_WARN,
  OPT_PHASE_CRIT,
  OPT_AUTH_USER,
  OPT_AUTH_PASSWORD_FILE,
  OPT_AUTH_PASSWORD_ENV,
  OPT_AUTH_MECH,
  OPT_MAIL_FROM,
  OPT_RCPT_TO,
  OPT_SEND,
  OPT_CHECK_INJECTION,
  OPT_MIN_TLS,
  OPT_POLICY
};

/* Short options; the leading ':' makes getopt report missing arguments. */
static const char short_opts[] = ":H:p:46w:c:D:t:vhV";

/* Long options. */
static const struct option long_opts[] = {
    {"hostname", required_argument, NULL, 'H'},
    {"port", required_argument, NULL, 'p'},
    {"tls", required_argument, NULL, OPT_TLS},
    {"role", required_argument, NULL, OPT_ROLE},
    {"ipv4", no_argument, NULL, '4'},
    {"ipv6", no_argument, NULL, '6'},
    {"warning", required_argument, NULL, 'w'},
    {"critical", required_argument, NULL, 'c'},
    {"cert-days", required_argument, NULL, 'D'},
    {"cafile", required_argument, NULL, OPT_CAFILE},
    {"sni", required_argument, NULL, OPT_SNI},
    {"no-verify", no_argument, NULL, OPT_NO_VERIFY},
    {"ehlo", required_argument, NULL, OPT_EHLO},
    {"source", required_argument, NULL, OPT_SOURCE},
    {"require", required_argument, NULL, OPT_REQUIRE},
    {"all-addresses", no_argument, NULL, OPT_ALL_ADDRESSES},
    {"banner-wait", required_argument, NULL, OPT_BANNER_WAIT},
    {"no-tls-trial", no_argument, NULL, OPT_NO_TLS_TRIAL},
    {"dns-server", required_argument, NULL, OPT_DNS_SERVER},
    {"phase-warn", required_argument, NULL, OPT_PHASE_WARN},
    {"phase-crit", required_argument, NULL, OPT_PHASE_CRIT},
    {"auth-user", required_argument, NULL, OPT_AUTH_USER},
    {"auth-password-file", required_argument, NULL, OPT_AUTH_PASSWORD_FILE},
    {"auth-password-env", required_argument, NULL, OPT_AUTH_PASSWORD_ENV},
    {"auth-mech", required_argument, NULL, OPT_AUTH_MECH},
    {"mail-from", required_argument, NULL, OPT_MAIL_FROM},
    {"rcpt-to", required_argument, NULL, OPT_RCPT_TO},
    {"send", no_argument, NULL, OPT_SEND},
    {"check-injection", no_argument, NULL, OPT_CHECK_INJECTION},
    {"min-tls", required_argument, NULL, OPT_MIN_TLS},
    {"policy", required_argument, NULL, OPT_POLICY},
    {"timeout", required_argument, NULL, 't'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0}};

static const char usage_text[] =
    "Usage: check_smtp_ports -H HOST [-p PORT[,PORT...]] "
    "[--tls auto|none|starttls|implicit]\n"
    "  [--role ROLE] [-4|-6] [-w RANGE] [-c RANGE] [-D|--cert-days WARN,CRIT]\n"
    "  [--cafile FILE] [--sni NAME] [--no-verify] [--ehlo NAME] "
    "[--source ADDR]\n"
    "  [--require all|any] [--all-addresses] [--banner-wait SECONDS] "
    "[--no-tls-trial]\n"
    "  [--dns-server ADDR[:PORT]] [-t SECONDS[:STATE]] [-v] [-h] [-V]\n"
    "  [--auth-user USER [--auth-password-file FILE | --auth-password-env "
    "VAR]\n"
    "   [--auth-mech MECH]] [--mail-from ADDR [--rcpt-to ADDR [--send]]]\n"
    "  [--check-injection] [--min-tls 1.0|1.1|1.2|1.3] [--policy FILE]\n";

static const char help_text[] =
    "check_smtp_ports v" SP_VERSION "\n"
    "Checks that a mail server's SMTP ports answer, with the right TLS mode\n"
    "for their role, and ends each port's probe with one diagnosis code.\n"
    "\n"
    "%USAGE%"
    "\n"
    "Options:\n"
    " -h, --help\n"
    "    Print this help and exit (UNKNOWN)\n"
    " -V, --version\n"
    "    Print the version and exit (UNKNOWN)\n"
    " -H, --hostname=HOST\n"
    "    Host name or IP address of the mail server\n"
    " -p, --port=PORT[,PORT...]\n"
    "    Ports to probe in parallel; may repeat; at most 16.\n"
    "    Default: " OPTS_DEFAULT_PORTS " (submission is what mail apps need;\n"
    "    25 is server-to-server relay, ask for it explicitly)\n"
    " --tls=auto|none|starttls|implicit\n"
    "    How to reach TLS on every port (default auto: implicit on 465,\n"
    "    STARTTLS elsewhere when advertised)\n"
    " --role=submission|implicit|relay\n"
    "    Role of every port (default: 465 implicit, 25 relay, others\n"
    "    submission); decides which findings are WARNING or CRITICAL\n"
    " -4, --ipv4 / -6, --ipv6\n"
    "    Use only IPv4 / IPv6 addresses\n"
    " -w, --warning=RANGE / -c, --critical=RANGE\n"
    "    Response time thresholds in seconds on each port's total time.\n"
    "    RANGE is [@]start:end as in the Monitoring Plugins guidelines:\n"
    "    10 (above 10), 10: (below 10), ~:10 (above 10), 10:20 (outside),\n"
    "    @10:20 (inside); bounds are inclusive, start defaults to 0\n"
    " --phase-warn=PHASE=RANGE / --phase-crit=PHASE=RANGE\n"
    "    The same for one phase (connect, banner, ehlo, starttls,\n"
    "    tls_handshake, ehlo_tls, dns, total); may repeat\n"
    " -D, --cert-days=WARN[,CRIT]\n"
    "    Certificate expiry: WARNING below WARN days, CRITICAL below CRIT\n"
    " --cafile=FILE\n"
    "    Trust anchors (PEM) instead of the system store\n"
    " --sni=NAME\n"
    "    Name to send as SNI and to verify the certificate for\n"
    " --no-verify\n"
    "    Do not verify the certificate chain and name\n"
    " --ehlo=NAME\n"
    "    EHLO argument (default: this machine's name)\n"
    " --source=ADDR\n"
    "    Local address to connect from\n"
    " --require=all|any\n"
    "    all (default): the worst port decides; any: OK when one port is OK\n"
    " --all-addresses\n"
    "    Probe every address the host resolves to, one result each\n"
    " --banner-wait=SECONDS\n"
    "    How long to wait for a greeting before trying implicit TLS on a\n"
    "    second connection (default min(2, timeout/3)); the first one keeps\n"
    "    waiting until the deadline\n"
    " --no-tls-trial\n"
    "    Never try implicit TLS beside a port that has not greeted (the trial\n"
    "    sends a TLS ClientHello, which an MTA logs as a bad command)\n"
    " --dns-server=ADDR[:PORT]\n"
    "    Resolver to ask instead of the system's\n"
    " --auth-user=USER\n"
    "    Authenticate as USER (only ever inside TLS, only to a server whose\n"
    "    certificate passed); the password or bearer token comes from\n"
    " --auth-password-file=FILE (its first line) or\n"
    " --auth-password-env=VAR (default " OPTS_DEFAULT_PASSWORD_ENV "),\n"
    "    never from the command line, and is never printed\n"
    " --auth-mech=PLAIN|LOGIN|CRAM-MD5|XOAUTH2\n"
    "    Mechanism (default: the strongest both sides support; XOAUTH2\n"
    "    only when named, with a bearer token as the secret)\n"
    " --mail-from=ADDR / --rcpt-to=ADDR\n"
    "    Try MAIL FROM and RCPT TO (then RSET); rejections are 'rejected'\n"
    " --send\n"
    "    Also send a small test message (unique Message-ID, X-Smtp-Probe)\n"
    " --check-injection\n"
    "    Test for the STARTTLS command injection flaw on an extra\n"
    "    connection: STARTTLS and NOOP are sent in one packet; a reply to\n"
    "    NOOP inside TLS means the server is vulnerable (CRITICAL)\n"
    " --min-tls=VERSION\n"
    "    Lowest acceptable TLS version (default 1.2): below it is\n"
    "    tls_weak_protocol\n"
    " --policy=FILE\n"
    "    Check the host against a port policy (YAML; replaces -p): every\n"
    "    deviation is reported as policy_violation with port and rule\n"
    " -t, --timeout=SECONDS[:STATE]\n"
    "    Deadline for the whole run (default 10). STATE (OK, WARNING,\n"
    "    CRITICAL, UNKNOWN or 0-3, default CRITICAL) replaces the state of\n"
    "    ports that timed out or could not be reached or resolved\n"
    " -v, --verbose\n"
    "    Repeat for more: -v one block per port, -vv certificate chain\n"
    "    details, -vvv the SMTP dialogue (passwords never shown)\n"
    "\n"
    "Output: 'SMTP STATE - summary | perfdata' on the first line, then with\n"
    "-v one block of long output per port. A port that is not ok shows its\n"
    "diagnosis code and a hint. All perfdata is on the first line.\n"
    "Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n";

/* Copy a message into err (bounded). */
static enum opts_action fail(char *err, size_t errlen, const char *msg) {
  snprintf(err, errlen, "%s", msg);
  return OPTS_ERROR;
}

/* Parse a finite decimal number that fills the whole string; 0 or -1. */
static int parse_double(const char *s, double *out) {
  char *end = NULL;

  if (s == NULL || *s == '\0')
    return -1;
  errno = 0;
  *out = strtod(s, &end);
  if (errno != 0 || *end != '\0' || !isfinite(*out))
    return -1;
  return 0;
}

/* Parse a decimal integer in [lo, hi] from s[0..len); 0 or -1. */
static int parse_long(const char *s, size_t len, long lo, long hi, long *out) {
  char tmp[32];
  char *end = NULL;

  if (len == 0 || len >= sizeof(tmp))
    return -1;
  memcpy(tmp, s, len);
  tmp[len] = '\0';
  if (tmp[0] == '+' || tmp[0] == ' ')
    return -1;
  errno = 0;
  *out = strtol(tmp, &end, 10);
  if (errno != 0 || *end != '\0' || *out < lo || *out > hi)
    return -1;
  return 0;
}

/* Parse a state word or digit; -1 when it is neither. */
int opts_parse_state(const char *s) {
  static const char *const names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

  if (s == NULL)
    return -1;
  if (s[0] >= '0' && s[0] <= '3' && s[1] == '\0')
    return s[0] - '0';
  for (int i = 0; i < 4; i++)
    if (strcasecmp(s, names[i]) == 0)
      return i;
  return -1;
}

/* Add the comma separated ports in arg to o->ports; 0 or -1 with err. */
static int add_ports(struct check_opts *o, const char *arg, char *err,
                     size_t errlen) {
  const char *p = arg;

  for (;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    long port = 0;
    bool seen = false;

    if (parse_long(p, len, 1, 65535, &port) != 0) {
      snprintf(err, errlen,
               "-p/--port: '%s' is not a list of port numbers 1-65535", arg);
      return -1;
    }
    for (int i = 0; i < o->nports; i++)
      if (o->ports[i] == (uint16_t)port)
        seen = true;
    if (!seen) {
      if (o->nports >= SP_MAX_PORTS) {
        snprintf(err, errlen, "-p/--port: too many ports (at most %d)",
                 SP_MAX_PORTS);
        return -1;
      }
      o->ports[o->nports++] = (uint16_t)port;
    }
    if (comma == NULL)
      return 0;
    p = comma + 1;
  }
}

/* Parse -t SECONDS[:STATE]; 0 or -1 with err. */
static int parse_timeout(struct check_opts *o, const char *arg, char *err,
                         size_t errlen) {
  char secs[32];
  const char *colon = strchr(arg, ':');
  size_t len = colon ? (size_t)(colon - arg) : strlen(arg);
  double t = 0;

  if (len == 0 || len >= sizeof(secs)) {
    snprintf(err, errlen, "-t/--timeout: '%s' is not SECONDS[:STATE]", arg);
    return -1;
  }
  memcpy(secs, arg, len);
  secs[len] = '\0';
  if (parse_double(secs, &t) != 0 || t <= 0 || t > 3600) {
    snprintf(err, errlen,
             "-t/--timeout: '%s' is not a number of seconds in (0, 3600]",
             secs);
    return -1;
  }
  o->req.timeout_s = t;
  if (colon != NULL) {
    int st = opts_parse_state(colon + 1);
    if (st < 0) {
      snprintf(err, errlen,
               "-t/--timeout: state '%s' is not OK, WARNING, CRITICAL, "
               "UNKNOWN or 0-3",
               colon + 1);
      return -1;
    }
    o->timeout_state = (enum sp_state)st;
  }
  return 0;
}

/* Parse -D WARN[,CRIT]; 0 or -1 with err. */
static int parse_cert_days(struct check_opts *o, const char *arg, char *err,
                           size_t errlen) {
  const char *comma = strchr(arg, ',');
  size_t wlen = comma ? (size_t)(comma - arg) : strlen(arg);
  long w = 0;
  long c = o->req.cert_crit_days;

  if (parse_long(arg, wlen, 0, 36500, &w) != 0 ||
      (comma && parse_long(comma + 1, strlen(comma + 1), 0, 36500, &c) != 0)) {
    snprintf(err, errlen,
             "-D/--cert-days: '%s' is not WARN[,CRIT] whole days 0-36500", arg);
    return -1;
  }
  if (!comma && c > w)
    c = w;
  if (c > w) {
    snprintf(err, errlen,
             "-D/--cert-days: '%s': CRIT days must not exceed WARN days", arg);
    return -1;
  }
  o->req.cert_warn_days = (int)w;
  o->req.cert_crit_days = (int)c;
  return 0;
}

/* Parse a threshold: "RANGE" for the total, or "PHASE=RANGE" when
 * with_phase. */
static int parse_phase_range(struct check_opts *o, const char *opt,
                             const char *arg, bool with_phase, bool critical,
                             char *err, size_t errlen) {
  int phase = SP_PHASE_TOTAL;
  const char *text = arg;
  char rerr[160];

  if (with_phase) {
    const char *eq = strchr(arg, '=');
    phase = -1;
    for (int i = 0; eq != NULL && i < SP_PHASE_COUNT; i++) {
      const char *name = sp_phase_name((enum sp_phase)i);
      if (strlen(name) == (size_t)(eq - arg) &&
          strncmp(name, arg, (size_t)(eq - arg)) == 0)
        phase = i;
    }
    if (phase < 0) {
      snprintf(err, errlen, "%s: '%s' is not PHASE=RANGE with a phase name",
               opt, arg);
      return -1;
    }
    text = eq + 1;
  }
  if (critical) {
    if (range_parse(text, &o->crit[phase], rerr, sizeof(rerr)) != 0)
      goto bad;
    o->have_crit[phase] = true;
  } else {
    if (range_parse(text, &o->warn[phase], rerr, sizeof(rerr)) != 0)
      goto bad;
    o->have_warn[phase] = true;
  }
  return 0;

bad:
  snprintf(err, errlen, "%s: %s", opt, rerr);
  return -1;
}

/* Name an option for an error message from getopt's state. */
static void name_bad_option(int argc, char **argv, char *buf, size_t buflen) {
  int idx = optind - 1;

  if (optopt != 0 && optopt < 256)
    snprintf(buf, buflen, "-%c", optopt);
  else if (idx >= 0 && idx < argc)
    snprintf(buf, buflen, "%.60s", argv[idx]);
  else
    snprintf(buf, buflen, "?");
}

/* --min-tls: 1.0, 1.1, 1.2 or 1.3. */
static int parse_min_tls(struct check_opts *o, const char *arg, char *err,
                         size_t errlen) {
  int v = sp_tls_version_from_name(arg);
  if (v != 0) {
    o->req.min_tls_version = v;
    return 0;
  }
  snprintf(err, errlen, "--min-tls: '%s' is not 1.0, 1.1, 1.2 or 1.3", arg);
  return -1;
}

/* Load the AUTH secret from its file or environment variable. */
static int load_secret(struct check_opts *o, char *err, size_t errlen) {
  char why[200];
  if (o->password_file && o->password_env)
    return snprintf(err, errlen,
                    "--auth-password-file and "
                    "--auth-password-env exclude each other"),
           -1;
  if (!o->req.auth_user) {
    if (o->password_file || o->password_env)
      return snprintf(err, errlen, "--auth-password-*: needs --auth-user"), -1;
    return 0;
  }
  const char *env =
      o->password_env ? o->password_env : OPTS_DEFAULT_PASSWORD_ENV;
  if (sp_secret_load(o->password_file, o->password_file ? NULL : env, o->secret,
                     sizeof(o->secret), o->secret_warning,
                     sizeof(o->secret_warning), why, sizeof(why)) != 0) {
    snprintf(err, errlen, "--auth-user: %s", why);
    return -1;
  }
  o->req.auth_secret = o->secret;
  return 0;
}

/* Free what parsing loaded and wipe the secret. */
void opts_free(struct check_opts *o) {
  sp_policy_free(o->policy);
  o->policy = NULL;
  volatile char *s = o->secret;
  for (size_t i = 0; i < sizeof(o->secret); i++)
    s[i] = 0;
}

/* Apply one option; 0 or -1 with err. */
static int apply_option(struct check_opts *o, int c, const char *arg, char *err,
                        size_t errlen) {
  int v;
  double d;

  switch (c) {
  case 'H':
    if (arg[0] == '\0' || strlen(arg) >= SP_MAX_HOST) {
      snprintf(err, errlen, "-H/--hostname: empty or too long");
      return -1;
    }
    o->req.host = arg;
    return 0;
  case 'p':
    return add_ports(o, arg, err, errlen);
  case OPT_TLS:
    v = sp_tls_mode_from_name(arg);
    if (v < 0) {
      snprintf(err, errlen,
               "--tls: '%s' is not auto, none, starttls or implicit", arg);
      return -1;
    }
    o->tls_mode = (enum sp_tls_mode)v;
    return 0;
  case OPT_ROLE:
    v = sp_role_from_name(arg);
    if (v < 0) {
      snprintf(err, errlen,
               "--role: '%s' is not default, submission, implicit or relay",
               arg);
      return -1;
    }
    o->role = (enum sp_role)v;
    return 0;
  case '4':
    o->req.family = SP_FAMILY_IPV4;
    return 0;
  case '6':
    o->req.family = SP_FAMILY_IPV6;
    return 0;
  case 'w':
    return parse_phase_range(o, "-w/--warning", arg, false, false, err, errlen);
  case 'c':
    return parse_phase_range(o, "-c/--critical", arg, false, true, err, errlen);
  case OPT_PHASE_WARN:
    return parse_phase_range(o, "--phase-warn", arg, true, false, err, errlen);
  case OPT_PHASE_CRIT:
    return parse_phase_range(o, "--phase-crit", arg, true, true, err, errlen);
  case 'D':
    return parse_cert_days(o, arg, err, errlen);
  case OPT_CAFILE:
    o->req.cafile = arg;
    return 0;
  case OPT_SNI:
    o->req.sni = arg;
    return 0;
  case OPT_NO_VERIFY:
    o->req.no_verify = true;
    return 0;
  case OPT_EHLO:
    o->req.ehlo_name = arg;
    return 0;
  case OPT_SOURCE:
    o->req.source = arg;
    return 0;
  case OPT_REQUIRE:
    if (strcmp(arg, "all") != 0 && strcmp(arg, "any") != 0) {
      snprintf(err, errlen, "--require: '%s' is not all or any", arg);
      return -1;
    }
    o->require_any = strcmp(arg, "any") == 0;
    return 0;
  case OPT_ALL_ADDRESSES:
    o->req.all_addresses = true;
    return 0;
  case OPT_NO_TLS_TRIAL:
    o->req.no_tls_trial = true;
    return 0;
  case OPT_BANNER_WAIT:
    if (parse_double(arg, &d) != 0 || d < 0 || d > 3600) {
      snprintf(err, errlen,
               "--banner-wait: '%s' is not a number of seconds 0-3600", arg);
      return -1;
    }
    o->req.banner_wait_s = d;
    return 0;
  case OPT_DNS_SERVER:
    o->req.dns_server = arg;
    return 0;
  case OPT_AUTH_USER:
    o->req.auth_user = arg;
    return 0;
  case OPT_AUTH_PASSWORD_FILE:
    o->password_file = arg;
    return 0;
  case OPT_AUTH_PASSWORD_ENV:
    o->password_env = arg;
    return 0;
  case OPT_AUTH_MECH:
    o->req.auth_mech = arg;
    return 0;
  case OPT_MAIL_FROM:
    o->req.mail_from = arg;
    return 0;
  case OPT_RCPT_TO:
    o->req.rcpt_to = arg;
    return 0;
  case OPT_SEND:
    o->req.send_message = true;
    return 0;
  case OPT_CHECK_INJECTION:
    o->req.check_injection = true;
    return 0;
  case OPT_MIN_TLS:
    return parse_min_tls(o, arg, err, errlen);
  case OPT_POLICY:
    o->policy_file = arg;
    return 0;
  case 't':
    return parse_timeout(o, arg, err, errlen);
  case 'v':
    if (o->verbose < 3)
      o->verbose++;
    return 0;
  default:
    snprintf(err, errlen, "internal error: option %d not handled", c);
    return -1;
  }
}

/* Parse argv into o. */
enum opts_action opts_parse(int argc, char **argv, struct check_opts *o,
                            char *err, size_t errlen) {
  enum opts_action action = OPTS_RUN;
  char name[64];
  char verr[192];
  int c;

  memset(o, 0, sizeof(*o));
  sp_request_init(&o->req);
  o->req.timeout_s = OPTS_DEFAULT_TIMEOUT;
  o->tls_mode = SP_TLS_AUTO;
  o->role = SP_ROLE_DEFAULT;
  o->timeout_state = SP_STATE_CRITICAL;
  o->output_cap = OPTS_CAP_DEFAULT;
  if (errlen > 0)
    err[0] = '\0';

  optind = 0; /* glibc: full re-initialisation, so tests can parse again */
  opterr = 0;
  while ((c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
    if (c == '?') {
      name_bad_option(argc, argv, name, sizeof(name));
      snprintf(err, errlen, "unknown option '%s'", name);
      return OPTS_ERROR;
    }
    if (c == ':') {
      name_bad_option(argc, argv, name, sizeof(name));
      snprintf(err, errlen, "option '%s' needs an argument", name);
      return OPTS_ERROR;
    }
    if (c == 'h') {
      action = OPTS_HELP;
      continue;
    }
    if (c == 'V') {
      if (action != OPTS_HELP)
        action = OPTS_VERSION;
      continue;
    }
    if (apply_option(o, c, optarg, err, errlen) != 0)
      return OPTS_ERROR;
  }
  if (action != OPTS_RUN)
    return action;
  if (optind < argc) {
    snprintf(err, errlen, "unexpected argument '%.60s'", argv[optind]);
    return OPTS_ERROR;
  }
  if (o->req.host == NULL)
    return fail(err, errlen, "-H/--hostname is required");
  if (o->policy_file) {
    char perr[200];
    if (o->nports > 0)
      return fail(err, errlen, "--policy: the policy names the ports, drop -p");
    o->policy = sp_policy_load(o->policy_file, perr, sizeof(perr));
    if (!o->policy) {
      snprintf(err, errlen, "--policy: %s", perr);
      return OPTS_ERROR;
    }
    if (sp_policy_add_ports(o->policy, &o->req) != 0)
      return fail(err, errlen, "--policy: too many ports");
  }
  if (load_secret(o, err, errlen) != 0)
    return OPTS_ERROR;
  if (!o->policy && o->nports == 0 &&
      add_ports(o, OPTS_DEFAULT_PORTS, err, errlen) != 0)
    return OPTS_ERROR;
  for (int i = 0; i < o->nports; i++) {
    if (sp_request_add_port(&o->req, o->ports[i], o->tls_mode, o->role) != 0)
      return fail(err, errlen, "-p/--port: too many ports");
  }
  if (o->verbose >= 3)
    o->req.trace = true;
  if (o->verbose == 2)
    o->output_cap = OPTS_CAP_VV;
  if (o->verbose >= 3)
    o->output_cap = OPTS_CAP_VVV;
  if (sp_request_validate(&o->req, verr, sizeof(verr)) != 0) {
    snprintf(err, errlen, "invalid request: %s", verr);
    return OPTS_ERROR;
  }
  return OPTS_RUN;
}

/* The one usage line. */
const char *opts_usage(void) {
  return usage_text;
}

/* The full help text (usage placeholder expanded once). */
const char *opts_help(void) {
  static char buf[sizeof(help_text) + sizeof(usage_text)];
  const char *mark = strstr(help_text, "%USAGE%");

  if (buf[0] == '\0' && mark != NULL)
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(mark - help_text), help_text,
             usage_text, mark + strlen("%USAGE%"));
  return buf[0] ? buf : help_text;
}
