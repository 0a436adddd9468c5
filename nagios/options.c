/*
 * options.c - command line of check_smtp_ports (getopt_long).
 *
 * Every probe option is the core's (common/options.c): the name map below
 * only spells its canonical key the Nagios way, and sp_request_set()
 * parses the value, with the core's words for a bad one. Only the options
 * that are truly the check's own are parsed here: -w/-c and --phase-*
 * ranges, -t's ":STATE", -v, --require, --policy, the AUTH secret's file
 * or variable, -h and -V.
 */
#include "options.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The check's own options (name map rows without a core key). */
enum own {
  OWN_NONE,  /* a core option */
  OWN_RANGE, /* -w, -c, --phase-warn, --phase-crit */
  OWN_REQUIRE,
  OWN_PASSWORD_FILE,
  OWN_PASSWORD_ENV,
  OWN_POLICY,
  OWN_SRV_DOMAIN,    /* --domain-submission */
  OWN_APP_URL,       /* --app-url */
  OWN_APP_SETTING,   /* --app-setting (repeats) */
  OWN_APP_FRAMEWORK, /* --app-framework */
  OWN_APP_FILE,      /* --app-settings-file */
  OWN_VERBOSE,
  OWN_HELP,
  OWN_VERSION
};

/* One option of the command line: the check's spelling of a core key, or
 * one of the check's own. */
struct name_map {
  const char *name;  /* long option */
  int short_opt;     /* short option, 0: none */
  const char *key;   /* canonical key; NULL: the check's own (own) */
  const char *key2;  /* key of the part after a comma (-D WARN,CRIT) */
  const char *fixed; /* a flag's value; NULL: the option takes one */
  const char *arg;   /* the argument as help shows it; NULL: a flag */
  const char *def;   /* the check's own default; NULL: the table's */
  const char *note;  /* the check's own help words (all of an own's) */
  enum own own;      /* which of the check's own options */
};

/* The name map, in help order. Every default is the core's except the
 * ports: 587,465, because submission and implicit TLS are what mail
 * clients and applications need, while 25 is server-to-server relay
 * (often blocked outbound) that one asks for with -p 25. */
static const struct name_map map[] = {
    {"hostname", 'H', "host", .arg = "HOST"},
    {"port", 'p', "ports", .arg = "PORT[,PORT...]", .def = OPTS_DEFAULT_PORTS,
     .note = "May repeat; at most 16."},
    {"tls", 0, "tls", .arg = "MODE"},
    {"role", 0, "role", .arg = "ROLE",
     .note = "The role decides which codes are WARNING or CRITICAL."},
    {"ipv4", '4', "family", .fixed = "ipv4"},
    {"ipv6", '6', "family", .fixed = "ipv6"},
    {"cert-days", 'D', "cert_warn_days", "cert_crit_days",
     .arg = "WARN[,CRIT]"},
    {"cafile", 0, "cafile", .arg = "FILE"},
    {"sni", 0, "sni", .arg = "NAME"},
    {"no-verify", 0, "no_verify", .fixed = "true"},
    {"ehlo", 0, "ehlo", .arg = "NAME"},
    {"source", 0, "source", .arg = "ADDR"},
    {"all-addresses", 0, "all_addresses", .fixed = "true"},
    {"banner-wait", 0, "banner_wait", .arg = "SECONDS"},
    {"no-tls-trial", 0, "tls_trial", .fixed = "false"},
    {"dns-server", 0, "dns_server", .arg = "ADDR[:PORT]"},
    {"auth-user", 0, "auth_user", .arg = "USER",
     .note = "Only ever inside TLS, to a server whose certificate passed."},
    {"auth-mech", 0, "auth_mech", .arg = "MECH",
     .note = "XOAUTH2 only when named, with a bearer token as the secret."},
    {"mail-from", 0, "mail_from", .arg = "ADDR"},
    {"rcpt-to", 0, "rcpt_to", .arg = "ADDR"},
    {"send", 0, "send", .fixed = "true"},
    {"check-injection", 0, "check_injection", .fixed = "true"},
    {"proxy-protocol", 0, "proxy_protocol", .arg = "v1|v2"},
    {"client-cert", 0, "client_cert", .arg = "FILE"},
    {"client-key", 0, "client_key", .arg = "FILE",
     .note = "A file that group or others can read gives a note (chmod 600), "
             "as for --auth-password-file."},
    {"min-tls", 0, "min_tls", .arg = "VERSION"},
    {"provider", 0, "provider", .arg = "NAME",
     .note = "Without -H the provider's host is probed; a -H host is "
             "checked against the provider's host names. Not with --policy."},
    {"timeout", 't', "timeout", .arg = "SECONDS[:STATE]",
     .note = "STATE (OK, WARNING, CRITICAL, UNKNOWN or 0-3, default CRITICAL) "
             "replaces the state of ports that timed out or could not be "
             "reached or resolved."},
    {"warning", 'w', .arg = "RANGE", .own = OWN_RANGE,
     .note = "Response time threshold in seconds on each port's total time. "
             "RANGE is [@]start:end as in the Monitoring Plugins guidelines: "
             "10 (above 10), 10: (below 10), ~:10 (above 10), 10:20 "
             "(outside), @10:20 (inside); bounds are inclusive, start "
             "defaults to 0."},
    {"critical", 'c', .arg = "RANGE", .own = OWN_RANGE,
     .note = "The same for CRITICAL."},
    {"phase-warn", 0, .arg = "PHASE=RANGE", .own = OWN_RANGE,
     .note = "The same for one phase (connect, banner, ehlo, starttls, "
             "tls_handshake, ehlo_tls, dns, total); may repeat."},
    {"phase-crit", 0, .arg = "PHASE=RANGE", .own = OWN_RANGE,
     .note = "The same for CRITICAL."},
    {"require", 0, .arg = "all|any", .own = OWN_REQUIRE,
     .note = "all (default): the worst port decides; any: OK when one port "
             "is OK."},
    {"auth-password-file", 0, .arg = "FILE", .own = OWN_PASSWORD_FILE,
     .note = "The --auth-user password or bearer token is the file's first "
             "line: never from the command line, never printed."},
    {"auth-password-env", 0, .arg = "VAR", .own = OWN_PASSWORD_ENV,
     .note =
         "Or this variable's value (default " OPTS_DEFAULT_PASSWORD_ENV ")."},
    {"policy", 0, .arg = "FILE", .own = OWN_POLICY,
     .note = "Check the host against a port policy (YAML; replaces -p): "
             "every deviation is reported as policy_violation with port and "
             "rule."},
    {"domain-submission", 0, .arg = "DOMAIN", .own = OWN_SRV_DOMAIN,
     .note = "Find the domain's submission service in DNS (RFC 6186): "
             "_submissions._tcp (implicit TLS, preferred, RFC 8314) and "
             "_submission._tcp, and probe what they name (no -H, -p, --tls "
             "or --policy). The certificate is verified against DOMAIN, not "
             "the SRV target (no DNSSEC: RFC 6186 section 6); no record is "
             "UNKNOWN, a \".\" target (no service) CRITICAL."},
    /* The app-settings check: the check's own options. */
    {"app-url", 0, .arg = "URL", .own = OWN_APP_URL,
     .note = "Check an app's mail settings: the URL it is configured with "
             "(smtp://user@host:587, smtps://host:465, "
             "smtp://host:465?encryption=tls), read by --app-framework's "
             "rules. Its host and port are probed (no -H, -p, --tls or "
             "--policy) and the TLS mode the settings would use is compared "
             "with the one the server speaks; the verdict is the port's "
             "detail on the first line, with the fix in the framework's "
             "words. A password in the URL is refused (use "
             "--app-settings-file)."},
    {"app-setting", 0, .arg = "KEY=VALUE", .own = OWN_APP_SETTING,
     .note = "One of the framework's settings (EMAIL_USE_TLS=True, "
             "secure=true, mail.smtp.starttls.enable=true, MAIL_PORT=587, "
             "...); may repeat, overrides the file's. Password keys are "
             "refused."},
    {"app-framework", 0, .arg = "NAME", .own = OWN_APP_FRAMEWORK,
     .note = "Whose rules read the settings: symfony, laravel, nodemailer, "
             "django, spring or generic (default: URLs as curl reads them)."},
    {"app-settings-file", 0, .arg = "FILE", .own = OWN_APP_FILE,
     .note = "Read the settings from a file (KEY=VALUE, KEY: VALUE or a URL "
             "a line; other keys are skipped). A password there is never "
             "printed; with the user (EMAIL_HOST_USER, MAIL_USERNAME, ...) "
             "and without --auth-user it is the AUTH secret."},
    {"verbose", 'v', .own = OWN_VERBOSE,
     .note = "Repeat for more: -v one block per port, -vv certificate chain "
             "details, -vvv the SMTP dialogue (passwords never shown)."},
    {"help", 'h', .own = OWN_HELP,
     .note = "Print this help and exit (UNKNOWN)."},
    {"version", 'V', .own = OWN_VERSION,
     .note = "Print the version and exit (UNKNOWN)."},
};

#define NMAP (sizeof(map) / sizeof(map[0]))

/* getopt code of a row without a short option: OPT_ROW + its index. */
#define OPT_ROW 256

/* The getopt tables, filled from the map (build_getopt). */
static struct option long_opts[NMAP + 1];
static char short_opts[2 * NMAP + 2];

/* Fill the getopt tables once from the name map. */
static void build_getopt(void) {
  size_t s = 0;
  if (long_opts[0].name)
    return;
  short_opts[s++] = ':'; /* report missing arguments as ':' */
  for (size_t i = 0; i < NMAP; i++) {
    const struct name_map *m = &map[i];
    int val = m->short_opt ? m->short_opt : OPT_ROW + (int)i;
    long_opts[i] = (struct option){m->name, m->arg != NULL, NULL, val};
    if (m->short_opt)
      s += (size_t)snprintf(short_opts + s, sizeof(short_opts) - s, "%c%s",
                            m->short_opt, m->arg ? ":" : "");
  }
}

/* The getopt_long table (for the docs test). */
const struct option *opts_long_options(void) {
  build_getopt();
  return long_opts;
}

/* The row of a getopt code, or NULL. */
static const struct name_map *map_of(int c) {
  if (c >= OPT_ROW && c < OPT_ROW + (int)NMAP)
    return &map[c - OPT_ROW];
  for (size_t i = 0; i < NMAP; i++)
    if (map[i].short_opt == c)
      return &map[i];
  return NULL;
}

/* The option as errors name it: "-X/--name" or "--name". */
static const char *spelling(const struct name_map *m, char *buf, size_t n) {
  if (m->short_opt)
    snprintf(buf, n, "-%c/--%s", m->short_opt, m->name);
  else
    snprintf(buf, n, "--%s", m->name);
  return buf;
}

/* Set one core key from text; on error err is "-X/--name: sentence". */
static int set_key(struct check_opts *o, const struct name_map *m,
                   const char *key, const char *value, char *err,
                   size_t errlen) {
  char why[200], name[64];
  if (sp_request_set(&o->req, key, value, why, sizeof(why)) == 0)
    return 0;
  snprintf(err, errlen, "%s: %s", spelling(m, name, sizeof(name)), why);
  return -1;
}

/* Apply a core option: -t's ":STATE" and -D's ",CRIT" split off. */
static int apply_mapped(struct check_opts *o, const struct name_map *m,
                        const char *arg, char *err, size_t errlen) {
  char head[64];
  if (m->fixed)
    return set_key(o, m, m->key, m->fixed, err, errlen);
  int split = m->key2 ? ',' : m->short_opt == 't' ? ':' : 0;
  const char *sep = split ? strchr(arg, split) : NULL;
  if (!sep || (size_t)(sep - arg) >= sizeof(head)) /* whole: the core says */
    return set_key(o, m, m->key, arg, err, errlen);
  snprintf(head, sizeof(head), "%.*s", (int)(sep - arg), arg);
  if (set_key(o, m, m->key, head, err, errlen) != 0)
    return -1;
  if (m->key2)
    return set_key(o, m, m->key2, sep + 1, err, errlen);
  int st = opts_parse_state(sep + 1);
  if (st < 0)
    return snprintf(err, errlen,
                    "-t/--timeout: state '%.40s' is not OK, WARNING, "
                    "CRITICAL, UNKNOWN or 0-3",
                    sep + 1),
           -1;
  o->timeout_state = (enum sp_state)st;
  return 0;
}

/* Parse a state word or digit; -1 when it is neither. */
int opts_parse_state(const char *s) {
  static const char *const names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
  if (s && s[0] >= '0' && s[0] <= '3' && s[1] == '\0')
    return s[0] - '0';
  for (int i = 0; s && i < 4; i++)
    if (strcasecmp(s, names[i]) == 0)
      return i;
  return -1;
}

/* Set a threshold: "RANGE" on the total time (-w, -c) or "PHASE=RANGE"
 * (--phase-warn, --phase-crit). */
static int set_range(struct check_opts *o, const struct name_map *m,
                     const char *arg, char *err, size_t errlen) {
  bool phased = !m->short_opt, crit = strstr(m->name, "crit") != NULL;
  const char *eq = phased ? strchr(arg, '=') : NULL;
  int phase = phased ? -1 : SP_PHASE_TOTAL;
  char why[160], name[64];
  for (int i = 0; eq && i < SP_PHASE_COUNT; i++)
    if (strlen(sp_phase_name((enum sp_phase)i)) == (size_t)(eq - arg) &&
        strncmp(sp_phase_name((enum sp_phase)i), arg, (size_t)(eq - arg)) == 0)
      phase = i;
  if (phase < 0)
    snprintf(why, sizeof(why), "'%.40s' is not PHASE=RANGE with a phase name",
             arg);
  else if (range_parse(eq ? eq + 1 : arg,
                       crit ? &o->crit[phase] : &o->warn[phase], why,
                       sizeof(why)) == 0)
    return (crit ? o->have_crit : o->have_warn)[phase] = true, 0;
  snprintf(err, errlen, "%s: %s", spelling(m, name, sizeof(name)), why);
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
  sp_app_wipe(&o->app_settings);
  volatile char *s = o->secret;
  for (size_t i = 0; i < sizeof(o->secret); i++)
    s[i] = 0;
}

/* Apply one of the check's own options; 0 or -1 with err. */
static int apply_own(struct check_opts *o, const struct name_map *m,
                     const char *arg, char *err, size_t errlen) {
  switch (m->own) {
  case OWN_RANGE:
    return set_range(o, m, arg, err, errlen);
  case OWN_REQUIRE:
    if (strcmp(arg, "all") != 0 && strcmp(arg, "any") != 0)
      return snprintf(err, errlen, "--require: '%s' is not all or any", arg),
             -1;
    o->require_any = strcmp(arg, "any") == 0;
    return 0;
  case OWN_PASSWORD_FILE:
    o->password_file = arg;
    return 0;
  case OWN_PASSWORD_ENV:
    o->password_env = arg;
    return 0;
  case OWN_POLICY:
    o->policy_file = arg;
    return 0;
  case OWN_SRV_DOMAIN:
    o->srv_domain = arg;
    return 0;
  case OWN_APP_URL:
    o->app = true;
    o->app_url = arg;
    return 0;
  case OWN_APP_SETTING:
    o->app = true;
    if (o->napp_set == OPTS_MAX_APP_SETTINGS)
      return snprintf(err, errlen, "--app-setting: at most %d",
                      OPTS_MAX_APP_SETTINGS),
             -1;
    o->app_set[o->napp_set++] = arg;
    return 0;
  case OWN_APP_FRAMEWORK:
    o->app = true;
    o->app_framework = arg;
    return 0;
  case OWN_APP_FILE:
    o->app = true;
    o->app_file = arg;
    return 0;
  case OWN_VERBOSE:
    o->verbose += o->verbose < 3;
    return 0;
  default: /* OWN_NONE, OWN_HELP, OWN_VERSION: handled by the caller */
    return snprintf(err, errlen, "internal error: --%s", m->name), -1;
  }
}

/* The --app-* options: parse the settings (file, URL, then each
 * --app-setting) by the framework's rules, and probe their host:port. */
static int app_finish(struct check_opts *o, char *err, size_t errlen) {
  struct sp_app_settings *a = &o->app_settings;
  char why[300];
  int fw = o->app_framework ? sp_app_framework_from_name(o->app_framework)
                            : SP_APP_GENERIC;
  if (fw < 0)
    return snprintf(err, errlen,
                    "--app-framework: '%.40s' is not symfony, laravel, "
                    "nodemailer, django, spring or generic",
                    o->app_framework),
           -1;
  sp_app_init(a, (enum sp_app_framework)fw);
  if (!o->app_url && !o->app_file && o->napp_set == 0)
    return snprintf(err, errlen,
                    "--app-framework: needs --app-url, --app-setting or "
                    "--app-settings-file"),
           -1;
  if (o->req.nports > 0 || o->policy_file || o->req.tls_mode != SP_TLS_AUTO)
    return snprintf(err, errlen,
                    "--app-*: the settings decide the port and TLS mode: drop "
                    "-p, --tls and --policy"),
           -1;
  if (o->app_file && sp_app_load_file(a, o->app_file, why, sizeof(why)) != 0)
    return snprintf(err, errlen, "--app-settings-file: %s", why), -1;
  if (o->app_url &&
      sp_app_set_url(a, o->app_url, SP_APP_FROM_ARGV, why, sizeof(why)) != 0)
    return snprintf(err, errlen, "--app-url: %s", why), -1;
  for (int i = 0; i < o->napp_set; i++)
    if (sp_app_set_line(a, o->app_set[i], SP_APP_FROM_ARGV, why, sizeof(why)) !=
        0)
      return snprintf(err, errlen, "--app-setting: %s", why), -1;
  if (sp_app_finish(a, why, sizeof(why)) != 0)
    return snprintf(err, errlen, "--app-*: %s", why), -1;
  if (!a->host[0] && !o->req.host)
    return snprintf(err, errlen,
                    "--app-*: the settings name no host (EMAIL_HOST, "
                    "MAIL_HOST, host, ...): give it, or -H"),
           -1;
  if (a->host[0] && o->req.host && strcasecmp(a->host, o->req.host) != 0)
    return snprintf(err, errlen,
                    "-H: the settings name host %.100s; drop -H or make them "
                    "agree",
                    a->host),
           -1;
  if (!o->req.host)
    o->req.host = a->host;
  if (sp_request_add_port(&o->req, a->port, sp_app_probe_mode(a),
                          SP_ROLE_DEFAULT) != 0)
    return snprintf(err, errlen, "--app-*: cannot add port %u",
                    (unsigned)a->port),
           -1;
  return 0;
}

/* --domain-submission: look the SRV records up and point the request at
 * what they name (a "." target leaves srv_none set for main). */
static int srv_finish(struct check_opts *o, char *err, size_t errlen) {
  if (o->req.host || o->req.nports > 0 || o->policy_file || o->app ||
      o->req.tls_mode != SP_TLS_AUTO)
    return snprintf(err, errlen,
                    "--domain-submission: the SRV records name the host, "
                    "ports and TLS modes: drop -H, -p, --tls, --policy and "
                    "--app-*"),
           -1;
  char why[SP_MAX_TEXT];
  double t = o->req.timeout_s / 2 < 5 ? o->req.timeout_s / 2 : 5;
  if (sp_srv_lookup(o->srv_domain, o->req.dns_server, t, &o->srv, why,
                    sizeof(why)) != 0)
    return snprintf(err, errlen, "--domain-submission: %s", why), -1;
  int rc = sp_srv_request(&o->srv, &o->req, o->srv_text, sizeof(o->srv_text),
                          why, sizeof(why));
  if (rc < 0)
    return snprintf(err, errlen, "--domain-submission: %s", why), -1;
  if (rc > 0) { /* no service: nothing to probe, CRITICAL (main) */
    o->srv_none = true;
    snprintf(o->srv_text, sizeof(o->srv_text), "%s", why);
    o->req.host = o->srv.domain; /* validation wants one; never probed */
    sp_request_add_port(&o->req, 587, SP_TLS_AUTO, SP_ROLE_DEFAULT);
  }
  return 0;
}

/* The settings file's password as the AUTH secret: only with the file's
 * user and without --auth-user (whose secret has its own options). */
static void app_secret(struct check_opts *o) {
  struct sp_app_settings *a = &o->app_settings;
  char why[200];
  if (!a->has_secret || !a->user[0] || o->req.auth_user) {
    sp_app_wipe(a);
    return;
  }
  snprintf(o->secret, sizeof(o->secret), "%s", a->secret);
  sp_app_wipe(a);
  o->req.auth_user = a->user;
  o->req.auth_secret = o->secret;
  size_t n = strlen(o->secret_warning);
  if (sp_secret_file_warning(o->app_file, o->secret_warning + n,
                             sizeof(o->secret_warning) - n, why,
                             sizeof(why)) != 0)
    o->secret_warning[n] = '\0';
}

/* After the options: policy or default ports, secret, verbosity, check. */
static enum opts_action finish(struct check_opts *o, char *err, size_t errlen) {
  char why[200];
  if (o->app && app_finish(o, err, errlen) != 0)
    return OPTS_ERROR;
  if (o->srv_domain && srv_finish(o, err, errlen) != 0)
    return OPTS_ERROR;
  if (o->req.host == NULL)
    return snprintf(err, errlen, "-H/--hostname is required"), OPTS_ERROR;
  if (o->policy_file) {
    if (o->req.nports > 0)
      return snprintf(err, errlen,
                      "--policy: the policy names the ports, drop -p"),
             OPTS_ERROR;
    o->policy = sp_policy_load(o->policy_file, why, sizeof(why));
    if (!o->policy)
      return snprintf(err, errlen, "--policy: %s", why), OPTS_ERROR;
    if (sp_policy_add_ports(o->policy, &o->req) != 0)
      return snprintf(err, errlen, "--policy: too many ports"), OPTS_ERROR;
  }
  if (load_secret(o, err, errlen) != 0)
    return OPTS_ERROR;
  if (o->app)
    app_secret(o);
  if (o->req.nports == 0 &&
      set_key(o, &map[1], "ports", OPTS_DEFAULT_PORTS, err, errlen) != 0)
    return OPTS_ERROR;
  o->req.trace = o->verbose >= 3;
  o->output_cap = o->verbose >= 3   ? OPTS_CAP_VVV
                  : o->verbose == 2 ? OPTS_CAP_VV
                                    : OPTS_CAP_DEFAULT;
  if (sp_request_validate(&o->req, why, sizeof(why)) != 0)
    return snprintf(err, errlen, "invalid request: %s", why), OPTS_ERROR;
  size_t n = strlen(o->secret_warning); /* e.g. a readable client_key */
  sp_request_warnings(&o->req, why, sizeof(why));
  if (why[0])
    snprintf(o->secret_warning + n, sizeof(o->secret_warning) - n, "%s%s",
             n ? "; " : "", why);
  return OPTS_RUN;
}

/* Parse argv into o. */
enum opts_action opts_parse(int argc, char **argv, struct check_opts *o,
                            char *err, size_t errlen) {
  enum opts_action action = OPTS_RUN;
  char name[64];
  int c;

  memset(o, 0, sizeof(*o));
  sp_request_init(&o->req);
  o->timeout_state = SP_STATE_CRITICAL;
  o->output_cap = OPTS_CAP_DEFAULT;
  if (errlen > 0)
    err[0] = '\0';
  build_getopt();
  optind = 0; /* glibc: full re-initialisation, so tests can parse again */
  opterr = 0;
  while ((c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
    const struct name_map *m = map_of(c);
    if (!m) { /* '?' unknown, ':' missing argument */
      name_bad_option(argc, argv, name, sizeof(name));
      snprintf(err, errlen,
               c == ':' ? "option '%s' needs an argument"
                        : "unknown option '%s'",
               name);
      return OPTS_ERROR;
    }
    if (m->own == OWN_HELP || m->own == OWN_VERSION)
      action =
          m->own == OWN_HELP || action == OPTS_HELP ? OPTS_HELP : OPTS_VERSION;
    else if ((m->key ? apply_mapped(o, m, optarg, err, errlen)
                     : apply_own(o, m, optarg, err, errlen)) != 0)
      return OPTS_ERROR;
  }
  if (action != OPTS_RUN)
    return action;
  if (optind < argc) {
    snprintf(err, errlen, "unexpected argument '%.60s'", argv[optind]);
    return OPTS_ERROR;
  }
  return finish(o, err, errlen);
}

/* A text built once from the name map (usage, help). */
struct text {
  char buf[16384]; /* the text */
  size_t len;      /* bytes used */
  size_t col;      /* column of the last line (for wrapping) */
};

static struct text usage, help; /* built by opts_usage, opts_help */

/* Append formatted text (cut when full). */
__attribute__((format(printf, 2, 3))) static void tput(struct text *t,
                                                       const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
  va_end(ap);
  if (n > 0)
    t->len += (size_t)n;
  if (t->len >= sizeof(t->buf))
    t->len = sizeof(t->buf) - 1;
  const char *nl = strrchr(t->buf, '\n');
  t->col = t->len - (nl ? (size_t)(nl + 1 - t->buf) : 0);
}

/* Append one word, on a new line indented by indent before column 78. */
static void tword(struct text *t, size_t indent, const char *w, size_t n) {
  if (t->col > indent && t->col + 1 + n > 78)
    tput(t, "\n%*s", (int)indent, "");
  tput(t, "%s%.*s", t->col > indent ? " " : "", (int)n, w);
}

/* Append a paragraph indented by 4, words wrapped before column 78. */
static void twrap(struct text *t, const char *text) {
  tput(t, "    ");
  for (const char *p = text + strspn(text, " "); *p; p += strspn(p, " ")) {
    size_t n = strcspn(p, " ");
    tword(t, 4, p, n);
    p += n;
  }
  tput(t, "\n");
}

/* The one usage line, from the name map. */
const char *opts_usage(void) {
  char item[80];
  if (usage.len > 0)
    return usage.buf;
  tput(&usage, "Usage: check_smtp_ports -H HOST");
  for (size_t i = 1; i < NMAP; i++) { /* map[0] is -H, the one required */
    const struct name_map *m = &map[i];
    int n = m->short_opt
                ? snprintf(item, sizeof(item), "[-%c%s%s]", m->short_opt,
                           m->arg ? " " : "", m->arg ? m->arg : "")
                : snprintf(item, sizeof(item), "[--%s%s%s]", m->name,
                           m->arg ? " " : "", m->arg ? m->arg : "");
    tword(&usage, 2, item, (size_t)n);
  }
  tput(&usage, "\n");
  return usage.buf;
}

/* Help of one row: its spelling, then the core table's description and
 * default with the check's note, or the check's own text. */
static void help_row(const struct name_map *m) {
  const struct sp_option *opt = m->key ? sp_option_find(m->key) : NULL;
  const struct sp_option *opt2 = m->key2 ? sp_option_find(m->key2) : NULL;
  char text[768];
  if (m->short_opt)
    tput(&help, " -%c,", m->short_opt);
  tput(&help, " --%s%s%s\n", m->name, m->arg ? "=" : "", m->arg ? m->arg : "");
  if (!opt) {
    twrap(&help, m->key ? "(not in the core's option table)" : m->note);
    return;
  }
  const char *def = m->def ? m->def : opt->def;
  int n = m->fixed ? snprintf(text, sizeof(text), "Sets %s to %s: %s", opt->key,
                              m->fixed, opt->doc)
                   : snprintf(text, sizeof(text), "%s%s%s", opt->doc,
                              opt2 ? "; after a comma: " : "",
                              opt2 ? opt2->doc : "");
  if (n > 0 && (size_t)n < sizeof(text))
    snprintf(text + n, sizeof(text) - (size_t)n, "%s%s.%s%s",
             def[0] == '(' ? " " : ". Default: ", def, m->note ? " " : "",
             m->note ? m->note : "");
  twrap(&help, text);
}

/* The full help text: every row of the name map, then the output. */
const char *opts_help(void) {
  if (help.len > 0)
    return help.buf;
  tput(&help,
       "check_smtp_ports v" SP_VERSION "\n"
       "Checks that a mail server's SMTP ports answer, with the right TLS "
       "mode\nfor their role, and ends each port's probe with one diagnosis "
       "code.\n\n%s\nOptions:\n",
       opts_usage());
  for (size_t i = 0; i < NMAP; i++)
    help_row(&map[i]);
  tput(&help, "\nOutput: 'SMTP STATE - summary | perfdata' on the first line, "
              "then with\n-v one block of long output per port. A port that "
              "is not ok shows its\ndiagnosis code and a hint. All perfdata "
              "is on the first line.\nExit codes: 0 OK, 1 WARNING, 2 "
              "CRITICAL, 3 UNKNOWN.\n");
  return help.buf;
}
