/*
 * smtp_probe.c - collectd read plugin: probes the SMTP ports of mail servers
 * with the smtp-probe core and dispatches per-port, per-phase latencies,
 * success, certificate time left, and state-change notifications.
 *
 * One engine thread runs every probe. Each <Target> block has a read
 * callback of its own that never blocks: it dispatches the round that
 * completed since the last read and submits the next one, unless a round is
 * still in flight. See USAGE.md next to this file.
 */
#include "smtp_probe_internal.h"

#include "utils/common/common.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>

/* The ports probed when a block names none. */
static const uint16_t spc_default_ports[] = {25, 465, 587, 2525};

/* Plugin-wide state: configured targets and the one engine. */
static struct spc_target *spc_target_list; /* configured, in order */
static struct sp_engine *spc_engine;       /* started in init */
static int spc_config_blocks;              /* <Target> blocks seen */

/* ---- Configuration ---------------------------------------------------- */

/* Write a formatted message into a caller's buffer. */
__attribute__((format(printf, 3, 4))) static void
spc_msg(char *buf, size_t buflen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, buflen, fmt, ap);
  va_end(ap);
}

/* Check that an option has exactly one value and no nested block. */
static int spc_one_value(const oconfig_item_t *ci, char *why, size_t whylen) {
  if (ci->children_num > 0) {
    spc_msg(why, whylen, "is an option, not a block");
    return -1;
  }
  if (ci->values_num != 1) {
    spc_msg(why, whylen, "takes exactly one value, got %d", ci->values_num);
    return -1;
  }
  return 0;
}

/* Read one non-empty string value of at most maxlen bytes into *out. */
static int spc_get_string(const oconfig_item_t *ci, size_t maxlen, char **out,
                          char *why, size_t whylen) {
  if (spc_one_value(ci, why, whylen) != 0)
    return -1;
  if (ci->values[0].type != OCONFIG_TYPE_STRING) {
    spc_msg(why, whylen, "takes a quoted string");
    return -1;
  }
  const char *s = ci->values[0].value.string;
  size_t len = strnlen(s, maxlen + 1);
  if (len == 0 || len > maxlen) {
    spc_msg(why, whylen, "must be 1 to %zu characters", maxlen);
    return -1;
  }
  char *copy = strndup(s, len);
  if (copy == NULL) {
    spc_msg(why, whylen, "out of memory");
    return -1;
  }
  free(*out);
  *out = copy;
  return 0;
}

/* Read one number value within [min, max] into *out. */
static int spc_get_number(const oconfig_item_t *ci, double min, double max,
                          double *out, char *why, size_t whylen) {
  if (spc_one_value(ci, why, whylen) != 0)
    return -1;
  if (ci->values[0].type != OCONFIG_TYPE_NUMBER) {
    spc_msg(why, whylen, "takes a number");
    return -1;
  }
  double v = ci->values[0].value.number;
  if (!isfinite(v) || v < min || v > max) {
    spc_msg(why, whylen, "must be between %g and %g, got %g", min, max, v);
    return -1;
  }
  *out = v;
  return 0;
}

/* Read one whole number within [min, max] into *out. */
static int spc_get_int(const oconfig_item_t *ci, int min, int max, int *out,
                       char *why, size_t whylen) {
  double v = 0;
  if (spc_get_number(ci, min, max, &v, why, whylen) != 0)
    return -1;
  if (v != floor(v)) {
    spc_msg(why, whylen, "must be a whole number, got %g", v);
    return -1;
  }
  *out = (int)v;
  return 0;
}

/* Read one boolean (true/false, or the strings yes/no/on/off). */
static int spc_get_bool(const oconfig_item_t *ci, bool *out, char *why,
                        size_t whylen) {
  if (spc_one_value(ci, why, whylen) != 0)
    return -1;
  const oconfig_value_t *v = &ci->values[0];
  if (v->type == OCONFIG_TYPE_BOOLEAN) {
    *out = v->value.boolean != 0;
    return 0;
  }
  if (v->type == OCONFIG_TYPE_STRING) {
    const char *s = v->value.string;
    if (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0 ||
        strcasecmp(s, "on") == 0) {
      *out = true;
      return 0;
    }
    if (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0 ||
        strcasecmp(s, "off") == 0) {
      *out = false;
      return 0;
    }
  }
  spc_msg(why, whylen, "takes true or false");
  return -1;
}

/* Read one keyword value and map it with a name parser (-1: unknown). */
static int spc_get_keyword(const oconfig_item_t *ci, int (*parse)(const char *),
                           const char *allowed, int *out, char *why,
                           size_t whylen) {
  char *s = NULL;
  if (spc_get_string(ci, 32, &s, why, whylen) != 0)
    return -1;
  int v = parse(s);
  if (v < 0) {
    spc_msg(why, whylen, "\"%s\" is not one of %s", s, allowed);
    free(s);
    return -1;
  }
  free(s);
  *out = v;
  return 0;
}

/* Map an AddressFamily word to enum sp_family; -1 when unknown. */
static int spc_family_from_name(const char *s) {
  if (strcasecmp(s, "any") == 0)
    return SP_FAMILY_ANY;
  if (strcasecmp(s, "ipv4") == 0)
    return SP_FAMILY_IPV4;
  if (strcasecmp(s, "ipv6") == 0)
    return SP_FAMILY_IPV6;
  return -1;
}

/* Map a TLS word to enum sp_tls_mode. */
static int spc_tls_from_name(const char *s) {
  return sp_tls_mode_from_name(s);
}

/* Read AuthMechanism: PLAIN, LOGIN, CRAM-MD5 or XOAUTH2 (any case), kept
 * in upper case. */
static int spc_get_mech(const oconfig_item_t *ci, char **out, char *why,
                        size_t whylen) {
  char *s = NULL;
  if (spc_get_string(ci, 32, &s, why, whylen) != 0)
    return -1;
  const char *canonical = sp_auth_mech_canonical(s);
  if (canonical) {
    /* Same length: the canonical spelling fits in place. */
    memcpy(s, canonical, strlen(canonical));
    free(*out);
    *out = s;
    return 0;
  }
  spc_msg(why, whylen, "\"%s\" is not one of PLAIN, LOGIN, CRAM-MD5, XOAUTH2",
          s);
  free(s);
  return -1;
}

/* Read MinTLS: "1.0" .. "1.3" (quoted or a bare number) into a TLS
 * version number (0x0301 .. 0x0304). */
static int spc_get_min_tls(const oconfig_item_t *ci, int *out, char *why,
                           size_t whylen) {
  if (spc_one_value(ci, why, whylen) != 0)
    return -1;
  const oconfig_value_t *v = &ci->values[0];
  char word[32] = "";
  if (v->type == OCONFIG_TYPE_STRING)
    sstrncpy(word, v->value.string, sizeof(word));
  else if (v->type == OCONFIG_TYPE_NUMBER && isfinite(v->value.number))
    snprintf(word, sizeof(word), "%.1f", v->value.number);
  int version = sp_tls_version_from_name(word);
  /* A number must be exactly 1.x, not 1.25 printed as "1.2". */
  bool exact =
      v->type != OCONFIG_TYPE_NUMBER ||
      fabs(v->value.number - (1.0 + 0.1 * (double)(version - 0x0301))) < 1e-9;
  if (version != 0 && exact) {
    *out = version;
    return 0;
  }
  spc_msg(why, whylen, "takes \"1.0\", \"1.1\", \"1.2\" or \"1.3\"");
  return -1;
}

/* Read the Port option: one or more ports, appended to ports[]. */
static int spc_get_ports(const oconfig_item_t *ci, uint16_t *ports, int *nports,
                         char *why, size_t whylen) {
  if (ci->children_num > 0) {
    spc_msg(why, whylen, "is an option, not a block");
    return -1;
  }
  if (ci->values_num < 1) {
    spc_msg(why, whylen, "takes one or more port numbers");
    return -1;
  }
  for (int i = 0; i < ci->values_num; i++) {
    const oconfig_value_t *v = &ci->values[i];
    if (v->type != OCONFIG_TYPE_NUMBER) {
      spc_msg(why, whylen, "takes port numbers, value %d is not a number",
              i + 1);
      return -1;
    }
    double p = v->value.number;
    if (!isfinite(p) || p != floor(p) || p < 1 || p > 65535) {
      spc_msg(why, whylen, "%g is not a port number (1-65535)", p);
      return -1;
    }
    for (int j = 0; j < *nports; j++) {
      if (ports[j] == (uint16_t)p) {
        spc_msg(why, whylen, "port %g is listed twice", p);
        return -1;
      }
    }
    if (*nports >= SP_MAX_PORTS) {
      spc_msg(why, whylen, "more than %d ports", SP_MAX_PORTS);
      return -1;
    }
    ports[(*nports)++] = (uint16_t)p;
  }
  return 0;
}

/* Check a target name: 1-63 of [A-Za-z0-9_.-], safe in plugin_instance. */
static int spc_check_name(const char *name, char *why, size_t whylen) {
  size_t len = strnlen(name, SPC_MAX_NAME);
  if (len == 0 || len >= SPC_MAX_NAME) {
    spc_msg(why, whylen, "the name must be 1 to %d characters",
            SPC_MAX_NAME - 1);
    return -1;
  }
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) {
      spc_msg(why, whylen,
              "the name may only hold letters, digits, '_', "
              "'.' and '-'");
      return -1;
    }
  }
  return 0;
}

/* Free one target and anything it still holds. */
void spc_target_free(struct spc_target *t) {
  if (t == NULL)
    return;
  if (t->done != NULL)
    sp_batch_free(t->done);
  free(t->host);
  free(t->sni);
  free(t->cafile);
  free(t->ehlo);
  free(t->source);
  free(t->dns_server);
  free(t->auth_user);
  free(t->auth_file);
  if (t->auth_secret != NULL) {
    explicit_bzero(t->auth_secret, strlen(t->auth_secret));
    free(t->auth_secret);
  }
  free(t->auth_mech);
  free(t->mail_from);
  free(t->rcpt_to);
  free(t->policy_file);
  sp_policy_free(t->policy);
  pthread_mutex_destroy(&t->lock);
  free(t);
}

/* Parse one option of a <Target> block into t (ports go to ports[]). */
static int spc_target_option(struct spc_target *t, const oconfig_item_t *c,
                             uint16_t *ports, int *nports, int *tls, int *role,
                             double *interval_s, char *why, size_t whylen) {
  const char *key = c->key;
  struct sp_request *r = &t->req;
  int v = 0;
  double d = 0;
  bool b = false;

  if (strcasecmp(key, "Host") == 0)
    return spc_get_string(c, SP_MAX_HOST - 1, &t->host, why, whylen);
  if (strcasecmp(key, "Port") == 0)
    return spc_get_ports(c, ports, nports, why, whylen);
  if (strcasecmp(key, "TLS") == 0)
    return spc_get_keyword(c, spc_tls_from_name,
                           "auto, none, starttls, implicit", tls, why, whylen);
  if (strcasecmp(key, "Role") == 0)
    return spc_get_keyword(c, sp_role_from_name,
                           "default, submission, implicit, relay", role, why,
                           whylen);
  if (strcasecmp(key, "SNI") == 0)
    return spc_get_string(c, SP_MAX_HOST - 1, &t->sni, why, whylen);
  if (strcasecmp(key, "CAFile") == 0)
    return spc_get_string(c, 4096, &t->cafile, why, whylen);
  if (strcasecmp(key, "EHLO") == 0)
    return spc_get_string(c, SP_MAX_HOST - 1, &t->ehlo, why, whylen);
  if (strcasecmp(key, "Source") == 0) {
    if (spc_get_string(c, 63, &t->source, why, whylen) != 0)
      return -1;
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, t->source, addr) != 1 &&
        inet_pton(AF_INET6, t->source, addr) != 1) {
      spc_msg(why, whylen, "\"%s\" is not an IPv4 or IPv6 address", t->source);
      return -1;
    }
    return 0;
  }
  if (strcasecmp(key, "DNSServer") == 0)
    return spc_get_string(c, 127, &t->dns_server, why, whylen);
  if (strcasecmp(key, "Verify") == 0) {
    if (spc_get_bool(c, &b, why, whylen) != 0)
      return -1;
    r->no_verify = !b;
    return 0;
  }
  if (strcasecmp(key, "AllAddresses") == 0)
    return spc_get_bool(c, &r->all_addresses, why, whylen);
  if (strcasecmp(key, "AddressFamily") == 0) {
    if (spc_get_keyword(c, spc_family_from_name, "any, ipv4, ipv6", &v, why,
                        whylen) != 0)
      return -1;
    r->family = (enum sp_family)v;
    return 0;
  }
  if (strcasecmp(key, "BannerWait") == 0) {
    if (spc_get_number(c, 0, 3600, &d, why, whylen) != 0)
      return -1;
    r->banner_wait_s = d;
    return 0;
  }
  if (strcasecmp(key, "Timeout") == 0) {
    if (spc_get_number(c, 0.001, 3600, &d, why, whylen) != 0)
      return -1;
    r->timeout_s = d;
    return 0;
  }
  if (strcasecmp(key, "Interval") == 0)
    return spc_get_number(c, 0.001, 86400, interval_s, why, whylen);
  if (strcasecmp(key, "CertWarningDays") == 0)
    return spc_get_int(c, -1, 36500, &r->cert_warn_days, why, whylen);
  if (strcasecmp(key, "CertCriticalDays") == 0)
    return spc_get_int(c, -1, 36500, &r->cert_crit_days, why, whylen);

  if (strcasecmp(key, "AuthUser") == 0)
    return spc_get_string(c, SP_MAX_HOST - 1, &t->auth_user, why, whylen);
  if (strcasecmp(key, "AuthPasswordFile") == 0)
    return spc_get_string(c, 4096, &t->auth_file, why, whylen);
  if (strcasecmp(key, "AuthMechanism") == 0)
    return spc_get_mech(c, &t->auth_mech, why, whylen);
  if (strcasecmp(key, "MailFrom") == 0)
    return spc_get_string(c, SP_MAX_HOST - 1, &t->mail_from, why, whylen);
  if (strcasecmp(key, "RcptTo") == 0)
    return spc_get_string(c, SP_MAX_HOST - 1, &t->rcpt_to, why, whylen);
  if (strcasecmp(key, "CheckInjection") == 0)
    return spc_get_bool(c, &r->check_injection, why, whylen);
  if (strcasecmp(key, "TLSTrial") == 0) {
    bool on = !r->no_tls_trial;
    int rc = spc_get_bool(c, &on, why, whylen);
    r->no_tls_trial = !on;
    return rc;
  }
  if (strcasecmp(key, "MinTLS") == 0)
    return spc_get_min_tls(c, &r->min_tls_version, why, whylen);
  if (strcasecmp(key, "PolicyFile") == 0)
    return spc_get_string(c, 4096, &t->policy_file, why, whylen);
  /* Never echo the value: it would be a password in the log. */
  if (strcasecmp(key, "AuthPassword") == 0 ||
      strcasecmp(key, "Password") == 0) {
    spc_msg(why, whylen,
            "no passwords in the configuration (it is often world-readable): "
            "put it in a file of mode 600 and use AuthPasswordFile");
    return -1;
  }
  if (strcasecmp(key, "Send") == 0 || strcasecmp(key, "SendMessage") == 0) {
    spc_msg(why, whylen,
            "not offered: collectd would send a test message every "
            "interval (use the Nagios check's --send)");
    return -1;
  }

  spc_msg(why, whylen, "unknown option");
  return -1;
}

/* The configuration key for a field named by sp_request_validate's
 * message ("banner_wait: ..." -> "BannerWait"), or NULL. */
static const char *spc_key_for_field(const char *msg, size_t *fieldlen) {
  static const struct {
    const char *field; /* the core's field name */
    const char *key;   /* our configuration key */
  } map[] = {{"host", "Host"},
             {"ports", "Port"},
             {"tls", "TLS"},
             {"role", "Role"},
             {"timeout", "Timeout"},
             {"banner_wait", "BannerWait"},
             {"sni", "SNI"},
             {"ehlo", "EHLO"},
             {"source", "Source"},
             {"dns_server", "DNSServer"},
             {"cafile", "CAFile"},
             {"cert_days", "CertCriticalDays"},
             {"family", "AddressFamily"},
             {"auth_user", "AuthUser"},
             {"auth_secret", "AuthPasswordFile"},
             {"auth", "AuthUser"},
             {"auth_mech", "AuthMechanism"},
             {"mail_from", "MailFrom"},
             {"rcpt_to", "RcptTo"},
             {"min_tls_version", "MinTLS"}};
  const char *colon = strchr(msg, ':');
  if (colon == NULL)
    return NULL;
  size_t len = (size_t)(colon - msg);
  for (size_t i = 0; i < STATIC_ARRAY_SIZE(map); i++) {
    if (strlen(map[i].field) == len && strncmp(msg, map[i].field, len) == 0) {
      *fieldlen = len;
      return map[i].key;
    }
  }
  return NULL;
}

/* Check the AUTH and trial keys together and read the password file;
 * on error write "KEY: reason" into why. A password file that group or
 * others can read is accepted with a warning in the log. */
static int spc_target_auth(struct spc_target *t, char *why, size_t whylen) {
  if (t->auth_file != NULL && t->auth_user == NULL) {
    spc_msg(why, whylen, "AuthPasswordFile: needs AuthUser");
    return -1;
  }
  if (t->auth_user != NULL && t->auth_file == NULL) {
    spc_msg(why, whylen,
            "AuthUser: needs AuthPasswordFile (the password is read only "
            "from a file)");
    return -1;
  }
  if (t->auth_mech != NULL && t->auth_user == NULL) {
    spc_msg(why, whylen, "AuthMechanism: needs AuthUser");
    return -1;
  }
  if (t->rcpt_to != NULL && t->mail_from == NULL) {
    spc_msg(why, whylen, "RcptTo: needs MailFrom");
    return -1;
  }
  if (t->auth_file == NULL)
    return 0;

  char secret[SPC_MAX_SECRET];
  char warn[SPC_MAX_ERR] = "";
  char err[SPC_MAX_ERR] = "";
  if (sp_secret_load(t->auth_file, NULL, secret, sizeof(secret), warn,
                     sizeof(warn), err, sizeof(err)) != 0) {
    explicit_bzero(secret, sizeof(secret));
    spc_msg(why, whylen, "AuthPasswordFile: %s", err);
    return -1;
  }
  if (warn[0] != '\0')
    WARNING(SPC_PLUGIN ": Target \"%s\": AuthPasswordFile: %s", t->name, warn);
  t->auth_secret = strdup(secret);
  explicit_bzero(secret, sizeof(secret));
  if (t->auth_secret == NULL) {
    spc_msg(why, whylen, "AuthPasswordFile: out of memory");
    return -1;
  }
  return 0;
}

/* Load the PolicyFile and take its ports; on error write "KEY: reason"
 * into why. The policy names the ports (and their TLS modes), so Port and
 * TLS must not be given with it. */
static int spc_target_policy(struct spc_target *t, int nports, bool tls_set,
                             char *why, size_t whylen) {
  char err[SPC_MAX_ERR] = "";
  if (nports > 0) {
    spc_msg(why, whylen,
            "Port: not with PolicyFile (the policy names the ports)");
    return -1;
  }
  if (tls_set) {
    spc_msg(why, whylen,
            "TLS: not with PolicyFile (the policy gives each port's TLS "
            "mode)");
    return -1;
  }
  t->policy = sp_policy_load(t->policy_file, err, sizeof(err));
  if (t->policy == NULL) {
    spc_msg(why, whylen, "PolicyFile: %s: %s", t->policy_file, err);
    return -1;
  }
  if (sp_policy_add_ports(t->policy, &t->req) != 0) {
    spc_msg(why, whylen, "PolicyFile: more than %d ports", SP_MAX_PORTS);
    return -1;
  }
  if (t->req.nports == 0) {
    spc_msg(why, whylen, "PolicyFile: %s names no port", t->policy_file);
    return -1;
  }
  return 0;
}

/* Parse one <Target> block; NULL with a message naming block and key. */
struct spc_target *spc_target_parse(const oconfig_item_t *ci,
                                    cdtime_t default_interval, char *err,
                                    size_t errlen) {
  char why[SPC_MAX_ERR] = "";

  if (ci->values_num != 1 || ci->values[0].type != OCONFIG_TYPE_STRING) {
    spc_msg(err, errlen,
            "Target: the block needs one quoted name, "
            "e.g. <Target \"mx1\">");
    return NULL;
  }
  const char *name = ci->values[0].value.string;
  if (spc_check_name(name, why, sizeof(why)) != 0) {
    spc_msg(err, errlen, "Target \"%.*s\": %s", SPC_MAX_NAME, name, why);
    return NULL;
  }

  struct spc_target *t = calloc(1, sizeof(*t));
  if (t == NULL) {
    spc_msg(err, errlen, "Target \"%s\": out of memory", name);
    return NULL;
  }
  pthread_mutex_init(&t->lock, NULL);
  sstrncpy(t->name, name, sizeof(t->name));
  sp_request_init(&t->req);

  uint16_t ports[SP_MAX_PORTS];
  int nports = 0;
  int tls = SP_TLS_AUTO;
  int role = SP_ROLE_DEFAULT;
  double interval_s = 0;
  bool timeout_set = false, warn_set = false, crit_set = false;
  bool tls_set = false;

  for (int i = 0; i < ci->children_num; i++) {
    const oconfig_item_t *c = &ci->children[i];
    if (spc_target_option(t, c, ports, &nports, &tls, &role, &interval_s, why,
                          sizeof(why)) != 0) {
      spc_msg(err, errlen, "Target \"%s\": %s: %s", t->name, c->key, why);
      spc_target_free(t);
      return NULL;
    }
    timeout_set = timeout_set || strcasecmp(c->key, "Timeout") == 0;
    warn_set = warn_set || strcasecmp(c->key, "CertWarningDays") == 0;
    crit_set = crit_set || strcasecmp(c->key, "CertCriticalDays") == 0;
    tls_set = tls_set || strcasecmp(c->key, "TLS") == 0;
  }

  if (t->host == NULL) {
    spc_msg(err, errlen, "Target \"%s\": Host: missing (required)", t->name);
    spc_target_free(t);
    return NULL;
  }

  t->interval =
      interval_s > 0 ? DOUBLE_TO_CDTIME_T(interval_s) : default_interval;
  double ival = CDTIME_T_TO_DOUBLE(t->interval);
  if (!timeout_set) {
    double def = ival * 0.8;
    t->req.timeout_s = def < SPC_DEFAULT_TIMEOUT ? def : SPC_DEFAULT_TIMEOUT;
  }
  if (t->req.timeout_s >= ival) {
    spc_msg(err, errlen,
            "Target \"%s\": Timeout: %g s must be below Interval (%g s)",
            t->name, t->req.timeout_s, ival);
    spc_target_free(t);
    return NULL;
  }
  /* Certificate thresholds: 14/7 days unless set; one set alone moves the
   * other's default so that critical never exceeds warning. */
  if (!warn_set)
    t->req.cert_warn_days = crit_set && t->req.cert_crit_days > SPC_WARN_DAYS
                                ? t->req.cert_crit_days
                                : SPC_WARN_DAYS;
  if (!crit_set) {
    int w = t->req.cert_warn_days;
    t->req.cert_crit_days = w < SPC_CRIT_DAYS ? w : SPC_CRIT_DAYS;
  }
  int warn = t->req.cert_warn_days, crit = t->req.cert_crit_days;
  if (warn >= 0 && crit > warn) {
    spc_msg(err, errlen,
            "Target \"%s\": CertCriticalDays: %d must not exceed "
            "CertWarningDays (%d)",
            t->name, crit, warn);
    spc_target_free(t);
    return NULL;
  }

  if (spc_target_auth(t, why, sizeof(why)) != 0 ||
      (t->policy_file != NULL &&
       spc_target_policy(t, nports, tls_set, why, sizeof(why)) != 0)) {
    spc_msg(err, errlen, "Target \"%s\": %s", t->name, why);
    spc_target_free(t);
    return NULL;
  }
  if (t->policy != NULL) {
    /* The policy's ports, each with the block's Role when one is given. */
    for (int i = 0; i < t->req.nports; i++)
      t->req.ports[i].role = (enum sp_role)role;
  } else if (nports == 0) {
    for (size_t i = 0; i < STATIC_ARRAY_SIZE(spc_default_ports); i++)
      ports[nports++] = spc_default_ports[i];
  }
  for (int i = 0; i < nports; i++) {
    if (sp_request_add_port(&t->req, ports[i], (enum sp_tls_mode)tls,
                            (enum sp_role)role) != 0) {
      spc_msg(err, errlen, "Target \"%s\": Port: cannot add port %u", t->name,
              (unsigned)ports[i]);
      spc_target_free(t);
      return NULL;
    }
  }

  t->req.host = t->host;
  t->req.sni = t->sni;
  t->req.cafile = t->cafile;
  t->req.ehlo_name = t->ehlo;
  t->req.source = t->source;
  t->req.dns_server = t->dns_server;
  t->req.auth_user = t->auth_user;
  t->req.auth_secret = t->auth_secret;
  t->req.auth_mech = t->auth_mech;
  t->req.mail_from = t->mail_from;
  t->req.rcpt_to = t->rcpt_to;
  t->req.send_message = false; /* never from collectd: see USAGE.md */

  if (sp_request_validate(&t->req, why, sizeof(why)) != 0) {
    /* Name our key for the core's field when we know it. */
    size_t flen = 0;
    const char *key = spc_key_for_field(why, &flen);
    if (key != NULL)
      spc_msg(err, errlen, "Target \"%s\": %s:%s", t->name, key,
              why + flen + 1);
    else
      spc_msg(err, errlen, "Target \"%s\": invalid request: %s", t->name, why);
    spc_target_free(t);
    return NULL;
  }
  return t;
}

/* Find a configured target by name. */
static struct spc_target *spc_find_target(const char *name) {
  for (struct spc_target *t = spc_target_list; t != NULL; t = t->next) {
    if (strcmp(t->name, name) == 0)
      return t;
  }
  return NULL;
}

/* Append a target at the end of the list (configuration order). */
static void spc_append_target(struct spc_target *t) {
  struct spc_target **pp = &spc_target_list;
  while (*pp != NULL)
    pp = &(*pp)->next;
  *pp = t;
}

/* collectd's complex-config callback for <Plugin smtp_probe>. */
int spc_config(oconfig_item_t *ci) {
  char err[SPC_MAX_ERR];
  cdtime_t default_interval = plugin_get_interval();

  for (int i = 0; i < ci->children_num; i++) {
    const oconfig_item_t *c = &ci->children[i];
    if (strcasecmp(c->key, "Target") != 0) {
      ERROR(SPC_PLUGIN ": \"%s\" is not a known option (only <Target> "
                       "blocks are); ignored",
            c->key);
      continue;
    }
    spc_config_blocks++;
    struct spc_target *t =
        spc_target_parse(c, default_interval, err, sizeof(err));
    if (t == NULL) {
      ERROR(SPC_PLUGIN ": %s; skipping this block", err);
      continue;
    }
    if (spc_find_target(t->name) != NULL) {
      ERROR(SPC_PLUGIN ": Target \"%s\": the name is used by an earlier "
                       "block; skipping this block",
            t->name);
      spc_target_free(t);
      continue;
    }
    spc_append_target(t);
  }
  /* Bad blocks are skipped, not fatal: init fails when none is left. */
  return 0;
}

/* The configured targets, in configuration order. */
struct spc_target *spc_targets(void) {
  return spc_target_list;
}

/* ---- Dispatch --------------------------------------------------------- */

/* The plugin_instance for one result: "<target>-<port>[-<address>]". */
int spc_instance_name(const char *target, const struct sp_result *res,
                      bool with_address, char *buf, size_t buflen) {
  int n;
  if (with_address && res->address[0] != '\0') {
    char addr[sizeof(res->address)];
    size_t i = 0;
    for (; i + 1 < sizeof(addr) && res->address[i] != '\0'; i++) {
      char c = res->address[i];
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9') || c == '.';
      addr[i] = ok ? c : '_';
    }
    addr[i] = '\0';
    n = snprintf(buf, buflen, "%s-%u-%s", target, (unsigned)res->port, addr);
  } else {
    n = snprintf(buf, buflen, "%s-%u", target, (unsigned)res->port);
  }
  return (n < 0 || (size_t)n >= buflen) ? -1 : 0;
}

/* Dispatch one gauge value. */
static void spc_dispatch_gauge(const char *instance, const char *type,
                               const char *type_instance, double value,
                               cdtime_t when, cdtime_t interval) {
  value_t v = {.gauge = value};
  value_list_t vl = VALUE_LIST_INIT;
  vl.values = &v;
  vl.values_len = 1;
  vl.time = when;
  vl.interval = interval;
  sstrncpy(vl.plugin, SPC_PLUGIN, sizeof(vl.plugin));
  sstrncpy(vl.plugin_instance, instance, sizeof(vl.plugin_instance));
  sstrncpy(vl.type, type, sizeof(vl.type));
  sstrncpy(vl.type_instance, type_instance, sizeof(vl.type_instance));
  plugin_dispatch_values(&vl);
}

/* Seconds from now until a certificate's expiry, clamped at 0. */
static double spc_time_left(time_t not_after, cdtime_t when) {
  double left = (double)not_after - CDTIME_T_TO_DOUBLE(when);
  return left > 0 ? left : 0;
}

/* Find (or make) the state slot of one target-port[-address]. */
static struct spc_state *spc_state_slot(struct spc_target *t,
                                        const struct sp_result *res,
                                        bool *is_new) {
  struct spc_state *victim = NULL;
  for (int i = 0; i < SPC_MAX_STATES; i++) {
    struct spc_state *s = &t->states[i];
    if (s->used && s->port == res->port &&
        strncmp(s->address, t->req.all_addresses ? res->address : "",
                sizeof(s->address)) == 0) {
      *is_new = false;
      return s;
    }
    /* An empty slot, else the one seen longest ago, is reused. */
    if (victim == NULL ||
        (victim->used && (!s->used || s->seen < victim->seen)))
      victim = s;
  }
  memset(victim, 0, sizeof(*victim));
  victim->used = true;
  victim->port = res->port;
  if (t->req.all_addresses)
    sstrncpy(victim->address, res->address, sizeof(victim->address));
  *is_new = true;
  return victim;
}

/* Map a probe state to a notification severity. */
static int spc_severity(enum sp_state state) {
  switch (state) {
  case SP_STATE_OK:
    return NOTIF_OKAY;
  case SP_STATE_WARNING:
    return NOTIF_WARNING;
  default:
    return NOTIF_FAILURE;
  }
}

/* Replace bytes that are not printable ASCII with '?'. */
static void spc_sanitise(char *s) {
  for (; *s != '\0'; s++) {
    if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
      *s = '?';
  }
}

/* Fill the fields every notification of one result shares. */
static void spc_notif_init(notification_t *n, int severity, cdtime_t when,
                           const char *instance, const char *type_instance) {
  memset(n, 0, sizeof(*n));
  n->severity = severity;
  n->time = when;
  sstrncpy(n->host, hostname_g != NULL ? hostname_g : "", sizeof(n->host));
  sstrncpy(n->plugin, SPC_PLUGIN, sizeof(n->plugin));
  sstrncpy(n->plugin_instance, instance, sizeof(n->plugin_instance));
  sstrncpy(n->type, "bool", sizeof(n->type));
  sstrncpy(n->type_instance, type_instance, sizeof(n->type_instance));
}

/* Mark a message cut by snprintf (len is what it wanted), sanitise it and
 * dispatch the notification. */
static void spc_notif_send(notification_t *n, int len) {
  if (len >= (int)sizeof(n->message)) /* mark a cut message */
    memcpy(n->message + sizeof(n->message) - 4, "...", 4);
  spc_sanitise(n->message);
  plugin_dispatch_notification(n);
}

/* Dispatch a notification when a target-port's state or code changed, and
 * on its first result when that is not OK. */
static void spc_notify_if_changed(struct spc_target *t, struct spc_state *s,
                                  bool is_new, const struct sp_result *res,
                                  const char *instance, cdtime_t when) {
  bool changed = is_new ? res->state != SP_STATE_OK
                        : (res->state != s->state || res->code != s->code);
  s->state = res->state;
  s->code = res->code;
  s->seen = t->rounds;
  if (!changed)
    return;

  /* The result's hint (its detail for a failure), then the code's
   * generic "what to check first" when that is not already it. */
  char hint[NOTIF_MAX_MSG_LEN];
  sp_result_hint(res, hint, sizeof(hint));
  const char *generic = sp_result_check_first(res);
  if (res->code != SP_OK && strstr(hint, generic) == NULL) {
    size_t used = strlen(hint);
    snprintf(hint + used, sizeof(hint) - used, "%s%s", used ? " - " : "",
             generic);
  }
  notification_t n;
  spc_notif_init(&n, spc_severity(res->state), when, instance, "success");
  int len = snprintf(n.message, sizeof(n.message), "%s port %u%s%s: %s %s: %s",
                     t->name, (unsigned)res->port,
                     s->address[0] != '\0' ? " address " : "", s->address,
                     sp_state_name(res->state), sp_code_name(res->code), hint);
  spc_notif_send(&n, len);
}

/* A 64-bit FNV-1a hash of a deviation's rule and detail: what identifies
 * a deviation from one round to the next. */
static uint64_t spc_deviation_hash(const struct sp_deviation *d) {
  uint64_t h = 14695981039346656037ull;
  const char *parts[2] = {d->rule, d->detail};
  size_t lens[2] = {strnlen(d->rule, sizeof(d->rule)),
                    strnlen(d->detail, sizeof(d->detail))};
  for (int p = 0; p < 2; p++) {
    for (size_t i = 0; i < lens[p]; i++) {
      h ^= (unsigned char)parts[p][i];
      h *= 1099511628211ull;
    }
    h ^= 0xff; /* separator: "ab"+"c" differs from "a"+"bc" */
    h *= 1099511628211ull;
  }
  return h;
}

/* Notify each policy deviation of one result that was not there in the
 * previous round (severity by the result's state), and an OKAY once when
 * the last of them has gone. */
static void spc_notify_deviations(struct spc_target *t, struct spc_state *s,
                                  const struct sp_result *res,
                                  const struct sp_deviation *devs, int ndevs,
                                  const char *instance, cdtime_t when) {
  uint64_t now[SPC_MAX_DEVIATIONS];
  int nnow = 0;
  const char *addr_sep = s->address[0] != '\0' ? " address " : "";
  for (int i = 0; i < ndevs && nnow < SPC_MAX_DEVIATIONS; i++) {
    uint64_t h = spc_deviation_hash(&devs[i]);
    bool known = false;
    for (int k = 0; k < s->ndeviations; k++)
      known = known || s->deviations[k] == h;
    for (int k = 0; k < nnow; k++)
      known = known || now[k] == h; /* the same deviation twice this round */
    now[nnow++] = h;
    if (known)
      continue;
    notification_t n;
    spc_notif_init(&n, spc_severity(res->state), when, instance, "policy");
    int len = snprintf(n.message, sizeof(n.message),
                       "%s port %u%s%s: %s policy_violation: rule %s: %s",
                       t->name, (unsigned)devs[i].port, addr_sep, s->address,
                       sp_state_name(res->state), devs[i].rule, devs[i].detail);
    spc_notif_send(&n, len);
  }
  if (nnow == 0 && s->ndeviations > 0) {
    notification_t n;
    spc_notif_init(&n, NOTIF_OKAY, when, instance, "policy");
    int len = snprintf(n.message, sizeof(n.message),
                       "%s port %u%s%s: policy: no deviation any more (now "
                       "%s %s)",
                       t->name, (unsigned)res->port, addr_sep, s->address,
                       sp_state_name(res->state), sp_code_name(res->code));
    spc_notif_send(&n, len);
  }
  memcpy(s->deviations, now, sizeof(now[0]) * (size_t)nnow);
  s->ndeviations = nnow;
}

/* Dispatch the values and notifications of one result; with a policy the
 * result is checked against it first (it may become policy_violation). */
static void spc_dispatch_result(struct spc_target *t, struct sp_result *res,
                                cdtime_t when) {
  char inst[DATA_MAX_NAME_LEN];
  struct sp_deviation devs[SPC_MAX_DEVIATIONS];
  int ndevs = 0;
  if (t->policy != NULL) {
    /* A batch of this one result, so that each deviation belongs to it
     * (with AllAddresses a port has several results). */
    struct sp_batch one = {.results = res, .nresults = 1, .dns_s = -1};
    ndevs = sp_policy_check(t->policy, &one, devs, SPC_MAX_DEVIATIONS);
  }
  /* With AllAddresses the address is always part of the name (the block's
   * setting decides, not the result), so that a host's identifiers do not
   * change with the number of addresses it resolves to. */
  if (spc_instance_name(t->name, res, t->req.all_addresses, inst,
                        sizeof(inst)) != 0) {
    ERROR(SPC_PLUGIN ": Target \"%s\": instance name for port %u too long; "
                     "result dropped",
          t->name, (unsigned)res->port);
    return;
  }
  for (int p = 0; p < SP_PHASE_COUNT; p++) {
    if (res->phase_done[p])
      spc_dispatch_gauge(inst, "latency", sp_phase_name((enum sp_phase)p),
                         res->phase_s[p], when, t->interval);
  }
  spc_dispatch_gauge(inst, "bool", "success", sp_result_success(res) ? 1 : 0,
                     when, t->interval);
  if (res->leaf_not_after != 0)
    spc_dispatch_gauge(inst, "timeleft", "cert",
                       spc_time_left(res->leaf_not_after, when), when,
                       t->interval);
  if (res->chain_not_after != 0)
    spc_dispatch_gauge(inst, "timeleft", "cert_chain",
                       spc_time_left(res->chain_not_after, when), when,
                       t->interval);
  bool is_new = false;
  struct spc_state *s = spc_state_slot(t, res, &is_new);
  spc_notify_if_changed(t, s, is_new, res, inst, when);
  if (t->policy != NULL)
    spc_notify_deviations(t, s, res, devs, ndevs, inst, when);
}

/* Dispatch the values and notifications of one completed round. */
void spc_dispatch_batch(struct spc_target *t, struct sp_batch *batch,
                        cdtime_t when) {
  t->rounds++;
  for (int i = 0; i < batch->nresults; i++)
    spc_dispatch_result(t, &batch->results[i], when);
}

/* ---- Engine and callbacks --------------------------------------------- */

/* The engine's completion callback: keep the round for the next read. */
void spc_done(struct sp_batch *batch, void *user) {
  struct spc_target *t = user;
  struct sp_batch *old = NULL;
  cdtime_t now = cdtime();

  pthread_mutex_lock(&t->lock);
  old = t->done; /* not expected: a read takes it before submitting again */
  t->done = batch;
  t->done_time = now;
  t->in_flight = false;
  pthread_mutex_unlock(&t->lock);

  if (old != NULL)
    sp_batch_free(old);
}

/* collectd's read callback for one target: dispatch the last completed
 * round, then submit the next one unless one is still in flight. */
int spc_read(user_data_t *ud) {
  struct spc_target *t = ud->data;
  char err[SPC_MAX_ERR];

  if (spc_engine == NULL)
    return -1;

  pthread_mutex_lock(&t->lock);
  struct sp_batch *batch = t->done;
  cdtime_t when = t->done_time;
  t->done = NULL;
  bool submit = !t->in_flight;
  if (submit)
    t->in_flight = true;
  pthread_mutex_unlock(&t->lock);

  if (batch != NULL) {
    spc_dispatch_batch(t, batch, when);
    sp_batch_free(batch);
  }
  if (!submit)
    return 0;

  if (sp_engine_submit(spc_engine, &t->req, spc_done, t, err, sizeof(err)) !=
      0) {
    pthread_mutex_lock(&t->lock);
    t->in_flight = false;
    pthread_mutex_unlock(&t->lock);
    ERROR(SPC_PLUGIN ": Target \"%s\": cannot submit a probe: %s", t->name,
          err);
    return -1;
  }
  return 0;
}

/* collectd's init callback: start the engine, register one read per
 * target. Fails only when no block is usable. */
int spc_init(void) {
  char err[SPC_MAX_ERR] = "";

  if (spc_engine != NULL)
    return 0;
  if (spc_target_list == NULL) {
    ERROR(SPC_PLUGIN ": no usable <Target> block (%d configured); the "
                     "plugin is not started",
          spc_config_blocks);
    return -1;
  }
  spc_engine = sp_engine_new(err, sizeof(err));
  if (spc_engine == NULL) {
    ERROR(SPC_PLUGIN ": cannot create the probe engine: %s", err);
    return -1;
  }
  if (sp_engine_start(spc_engine) != 0) {
    ERROR(SPC_PLUGIN ": cannot start the probe engine thread");
    sp_engine_free(spc_engine);
    spc_engine = NULL;
    return -1;
  }

  int registered = 0;
  for (struct spc_target *t = spc_target_list; t != NULL; t = t->next) {
    char name[DATA_MAX_NAME_LEN];
    snprintf(name, sizeof(name), SPC_PLUGIN "/%s", t->name);
    /* The targets stay owned by the list: shutdown frees them. */
    user_data_t ud = {.data = t, .free_func = NULL};
    if (plugin_register_complex_read(SPC_PLUGIN, name, spc_read, t->interval,
                                     &ud) != 0) {
      ERROR(SPC_PLUGIN ": Target \"%s\": cannot register its read callback",
            t->name);
      continue;
    }
    registered++;
  }
  if (registered == 0) {
    sp_engine_free(spc_engine);
    spc_engine = NULL;
    return -1;
  }
  INFO(SPC_PLUGIN ": probing %d target(s) of %d configured", registered,
       spc_config_blocks);
  return 0;
}

/* collectd's shutdown callback: stop the engine, free everything. collectd
 * has stopped its read threads before it calls this. */
int spc_shutdown(void) {
  if (spc_engine != NULL) {
    sp_engine_stop(spc_engine);
    sp_engine_free(spc_engine);
    spc_engine = NULL;
  }
  while (spc_target_list != NULL) {
    struct spc_target *t = spc_target_list;
    spc_target_list = t->next;
    spc_target_free(t);
  }
  spc_config_blocks = 0;
  return 0;
}

/* Register the plugin's callbacks with collectd. */
__attribute__((visibility("default"))) void module_register(void) {
  plugin_register_complex_config(SPC_PLUGIN, spc_config);
  plugin_register_init(SPC_PLUGIN, spc_init);
  plugin_register_shutdown(SPC_PLUGIN, spc_shutdown);
}
