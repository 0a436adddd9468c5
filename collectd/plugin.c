/*
 * plugin.c - collectd read plugin (smtp_probe.so): probes the SMTP ports of
 * mail servers with the smtp-probe core and dispatches per-port, per-phase
 * latencies, success, certificate time left, and state-change
 * notifications.
 *
 * One engine thread runs every probe. Each <Target> block has a read
 * callback of its own that never blocks: it dispatches the round that
 * completed since the last read and submits the next one, unless a round is
 * still in flight. See USAGE.md next to this file.
 *
 * Configuration: the probe options of a block are the core's (options.c);
 * this file only maps collectd's key spellings to the canonical keys,
 * turns collectd's typed values into text and lets sp_request_set parse
 * them. Its own are Interval, the block and its name, the password file
 * and the PolicyFile.
 */
#include "plugin_internal.h"

#include "utils/common/common.h"

#include <stdarg.h>

/* Plugin-wide state: configured targets and the one engine. */
static struct spc_target *spc_target_list; /* configured, in order */
static struct sp_engine *spc_engine;       /* started in init */
static int spc_config_blocks;              /* <Target> blocks seen */

/* ---- Configuration ---------------------------------------------------- */

/* The ports of a block that names none (and has no PolicyFile). */
#define SPC_DEFAULT_PORTS "25,465,587,2525"

/* One collectd key and the core option it sets. */
struct spc_key {
  const char *key; /* collectd's spelling (a contract; any case in) */
  const char *opt; /* the core's canonical key (sp_request_set) */
};

/* The name map: every probe option of a <Target> block, parsed by the core
 * with the core's defaults, except where collectd's conventions differ:
 * - Port: all four ports (SPC_DEFAULT_PORTS), not a pick: graphs want them
 *   all, and a port that stops answering shows as a gap in its graph;
 * - Timeout: at most 0.8 x Interval (below the core's 10 s on short
 *   intervals): collectd rounds must end before the next one starts;
 * - Verify: the core's no_verify negated (the plugin's spelling since 0.1).
 * Certificate days are off as in the core (collectd's own way to alert on
 * a value is the threshold plugin on timeleft-cert). */
static const struct spc_key spc_keys[] = {
    {"Host", "host"},
    {"Port", "ports"},
    {"TLS", "tls"},
    {"Role", "role"},
    {"SNI", "sni"},
    {"CAFile", "cafile"},
    {"Verify", "no_verify"},
    {"EHLO", "ehlo"},
    {"AddressFamily", "family"},
    {"AllAddresses", "all_addresses"},
    {"Source", "source"},
    {"BannerWait", "banner_wait"},
    {"DNSServer", "dns_server"},
    {"Timeout", "timeout"},
    {"CertWarningDays", "cert_warn_days"},
    {"CertCriticalDays", "cert_crit_days"},
    {"AuthUser", "auth_user"},
    {"AuthMechanism", "auth_mech"},
    {"MailFrom", "mail_from"},
    {"RcptTo", "rcpt_to"},
    {"CheckInjection", "check_injection"},
    {"TLSTrial", "tls_trial"},
    {"ProxyProtocol", "proxy_protocol"},
    {"ClientCert", "client_cert"},
    {"ClientKey", "client_key"},
    {"MinTLS", "min_tls"},
    {"Provider", "provider"}};

/* The few other field names sp_request_validate's messages use. */
static const struct spc_key spc_fields[] = {{"CertCriticalDays", "cert_days"},
                                            {"AuthPasswordFile", "auth_secret"},
                                            {"AuthUser", "auth"}};

/* The keys that are the plugin's own: not probe options. */
static const char *const spc_own_keys[] = {"Interval", "AuthPasswordFile",
                                           "PolicyFile"};

/* What a block set so far, beyond its request. */
struct spc_seen {
  bool ports;        /* a Port line */
  bool tls;          /* a TLS line */
  bool timeout;      /* a Timeout line */
  double interval_s; /* Interval, or 0 */
};

/* The i-th key a <Target> block accepts, NULL past the end. */
const char *spc_key_at(size_t i) {
  if (i < STATIC_ARRAY_SIZE(spc_keys))
    return spc_keys[i].key;
  i -= STATIC_ARRAY_SIZE(spc_keys);
  return i < STATIC_ARRAY_SIZE(spc_own_keys) ? spc_own_keys[i] : NULL;
}

/* Write a formatted message into a caller's buffer. */
__attribute__((format(printf, 3, 4))) static void
spc_msg(char *buf, size_t buflen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, buflen, fmt, ap);
  va_end(ap);
}

/* A number as text, with up to 15 significant digits: what a person wrote
 * reads back the same ("25", "0.5", "1000000000"). With decimal at least
 * one decimal place, because collectd hands `MinTLS 1.0` over as the
 * number 1 and the core wants "1.0". */
static void spc_number_text(double d, bool decimal, char *buf, size_t len) {
  snprintf(buf, len, "%.15g", d);
  if (decimal && strpbrk(buf, ".en") == NULL) /* not 1e+20, inf or nan */
    strncat(buf, ".0", len - strlen(buf) - 1);
}

/* An option's values as the text the core parses: strings as written,
 * booleans "true"/"false", numbers by spc_number_text, and (only where
 * multi) several values joined by ',' ("Port 25 465" -> "25,465"). */
static int spc_value_text(const oconfig_item_t *c, bool multi, bool decimal,
                          char *buf, size_t buflen, char *why, size_t whylen) {
  if (c->children_num > 0) {
    spc_msg(why, whylen, "is an option, not a block");
    return -1;
  }
  if (c->values_num < 1 || (!multi && c->values_num != 1)) {
    spc_msg(why, whylen, "takes %s, got %d",
            multi ? "one or more values" : "exactly one value", c->values_num);
    return -1;
  }
  size_t used = 0;
  for (int i = 0; i < c->values_num; i++) {
    const oconfig_value_t *v = &c->values[i];
    char num[32];
    const char *s = num;
    if (v->type == OCONFIG_TYPE_STRING)
      s = v->value.string;
    else if (v->type == OCONFIG_TYPE_BOOLEAN)
      s = v->value.boolean ? "true" : "false";
    else
      spc_number_text(v->value.number, decimal, num, sizeof(num));
    int n = snprintf(buf + used, buflen - used, "%s%s", i > 0 ? "," : "", s);
    if (n < 0 || (size_t)n >= buflen - used) {
      spc_msg(why, whylen, "the value is longer than %zu bytes", buflen - 1);
      return -1;
    }
    used += (size_t)n;
  }
  return 0;
}

/* Keep a copy of a value's text for as long as the target (the request
 * points at it); NULL when out of memory. */
static const char *spc_keep(struct spc_target *t, const char *text) {
  char **grown = realloc(t->texts, (t->ntexts + 1) * sizeof(*grown));
  if (grown == NULL)
    return NULL;
  t->texts = grown;
  char *copy = strdup(text);
  if (copy != NULL)
    t->texts[t->ntexts++] = copy;
  return copy;
}

/* Parse one of the plugin's own options (or refuse a key it does not
 * have); on error write the reason into why. */
static int spc_own_option(struct spc_target *t, const oconfig_item_t *c,
                          struct spc_seen *seen, char *why, size_t whylen) {
  const char *key = c->key;
  char text[SPC_MAX_VALUE];
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
  bool interval = strcasecmp(key, "Interval") == 0;
  bool auth_file = strcasecmp(key, "AuthPasswordFile") == 0;
  if (!interval && !auth_file && strcasecmp(key, "PolicyFile") != 0) {
    spc_msg(why, whylen, "unknown option");
    return -1;
  }
  if (spc_value_text(c, false, false, text, sizeof(text), why, whylen) != 0)
    return -1;
  if (interval) {
    double s = 0;
    if (sp_parse_seconds(text, &s) != 0 || !(s > 0) || s > 86400) {
      spc_msg(why, whylen,
              "'%.40s' is not a number of seconds above 0 and at most 86400 "
              "(or a duration such as 1m30s)",
              text);
      return -1;
    }
    seen->interval_s = s;
    return 0;
  }
  const char *kept = text[0] != '\0' ? spc_keep(t, text) : NULL;
  if (kept == NULL) {
    spc_msg(why, whylen, text[0] ? "out of memory" : "an empty file name");
    return -1;
  }
  *(auth_file ? &t->auth_file : &t->policy_file) = kept;
  return 0;
}

/* Set one option of a <Target> block: a probe option through the name map
 * and sp_request_set, else one of the plugin's own; on error write the
 * reason (the core's sentence for a probe option) into why. */
static int spc_target_option(struct spc_target *t, const oconfig_item_t *c,
                             struct spc_seen *seen, char *why, size_t whylen) {
  const struct spc_key *k = NULL;
  for (size_t i = 0; i < STATIC_ARRAY_SIZE(spc_keys) && k == NULL; i++)
    if (strcasecmp(c->key, spc_keys[i].key) == 0)
      k = &spc_keys[i];
  if (k == NULL)
    return spc_own_option(t, c, seen, why, whylen);
  const struct sp_option *o = sp_option_find(k->opt);
  enum sp_opt_grammar g = o != NULL ? o->grammar : SP_GRAM_TEXT;
  char text[SPC_MAX_VALUE];
  if (spc_value_text(c, g == SP_GRAM_PORTS, g == SP_GRAM_TLS_VERSION, text,
                     sizeof(text), why, whylen) != 0)
    return -1;
  bool b = false; /* Verify says the opposite of the core's no_verify */
  if (strcmp(k->opt, "no_verify") == 0 && sp_parse_bool(text, &b) == 0)
    snprintf(text, sizeof(text), "%s", b ? "false" : "true");
  const char *kept = spc_keep(t, text);
  if (kept == NULL) {
    spc_msg(why, whylen, "out of memory");
    return -1;
  }
  seen->ports = seen->ports || strcmp(k->opt, "ports") == 0;
  seen->tls = seen->tls || strcmp(k->opt, "tls") == 0;
  seen->timeout = seen->timeout || strcmp(k->opt, "timeout") == 0;
  return sp_request_set(&t->req, k->opt, kept, why, whylen);
}

/* The collectd key of a core field name (len bytes at s), or NULL. */
static const char *spc_key_of_field(const char *s, size_t len) {
  for (size_t i = 0; i < STATIC_ARRAY_SIZE(spc_keys); i++)
    if (strlen(spc_keys[i].opt) == len && strncmp(s, spc_keys[i].opt, len) == 0)
      return spc_keys[i].key;
  for (size_t i = 0; i < STATIC_ARRAY_SIZE(spc_fields); i++)
    if (strlen(spc_fields[i].opt) == len &&
        strncmp(s, spc_fields[i].opt, len) == 0)
      return spc_fields[i].key;
  return NULL;
}

/* A core message in collectd's spelling: its leading field name and every
 * other field name (a word with '_') as our keys, e.g. "auth_mech: needs
 * auth_user" -> "AuthMechanism: needs AuthUser". */
static void spc_translate(const char *msg, char *out, size_t outlen) {
  size_t o = 0;
  for (const char *p = msg; *p != '\0' && o + 1 < outlen;) {
    size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
    const char *key = NULL;
    if (len > 0 && (p == msg || (p[-1] == ' ' && memchr(p, '_', len))))
      key = spc_key_of_field(p, len);
    len = len > 0 ? len : 1; /* else copy one other byte */
    int n = key ? snprintf(out + o, outlen - o, "%s", key)
                : snprintf(out + o, outlen - o, "%.*s", (int)len, p);
    o += n > 0 ? (size_t)n : 0;
    p += len;
  }
  out[o < outlen ? o : outlen - 1] = '\0';
}

/* Check a target name: 1-63 of [A-Za-z0-9_.-], safe in plugin_instance. */
static int spc_check_name(const char *name, char *why, size_t whylen) {
  size_t len = strnlen(name, SPC_MAX_NAME);
  if (len == 0 || len >= SPC_MAX_NAME) {
    spc_msg(why, whylen, "the name must be 1 to %d characters",
            SPC_MAX_NAME - 1);
    return -1;
  }
  if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789_.-") != len) {
    spc_msg(why, whylen,
            "the name may only hold letters, digits, '_', '.' and '-'");
    return -1;
  }
  return 0;
}

/* Free one target and anything it still holds. */
void spc_target_free(struct spc_target *t) {
  if (t == NULL)
    return;
  if (t->done != NULL)
    sp_batch_free(t->done);
  for (size_t i = 0; i < t->ntexts; i++)
    free(t->texts[i]);
  free(t->texts);
  if (t->auth_secret != NULL) {
    explicit_bzero(t->auth_secret, strlen(t->auth_secret));
    free(t->auth_secret);
  }
  sp_policy_free(t->policy);
  pthread_mutex_destroy(&t->lock);
  free(t);
}

/* Check AuthUser and AuthPasswordFile together and read the password
 * file; on error write "KEY: reason" into why. A password file that group
 * or others can read is accepted with a warning in the log. */
static int spc_target_auth(struct spc_target *t, char *why, size_t whylen) {
  if (t->auth_file != NULL && t->req.auth_user == NULL) {
    spc_msg(why, whylen, "AuthPasswordFile: needs AuthUser");
    return -1;
  }
  if (t->req.auth_user != NULL && t->auth_file == NULL) {
    spc_msg(why, whylen,
            "AuthUser: needs AuthPasswordFile (the password is read only "
            "from a file)");
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
  t->req.auth_secret = t->auth_secret;
  return 0;
}

/* Load the PolicyFile and take its ports; on error write "KEY: reason"
 * into why. The policy names the ports (and their TLS modes), so Port and
 * TLS must not be given with it; Role applies to each of its ports. */
static int spc_target_policy(struct spc_target *t, const struct spc_seen *seen,
                             char *why, size_t whylen) {
  char err[SPC_MAX_ERR] = "";
  if (seen->ports || seen->tls) {
    spc_msg(why, whylen,
            seen->ports ? "Port: not with PolicyFile (the policy names the "
                          "ports)"
                        : "TLS: not with PolicyFile (the policy gives each "
                          "port's TLS mode)");
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

  struct spc_seen seen = {0};
  for (int i = 0; i < ci->children_num; i++) {
    const oconfig_item_t *c = &ci->children[i];
    if (spc_target_option(t, c, &seen, why, sizeof(why)) != 0) {
      spc_msg(err, errlen, "Target \"%s\": %s: %s", t->name, c->key, why);
      goto fail;
    }
  }

  t->interval = seen.interval_s > 0 ? DOUBLE_TO_CDTIME_T(seen.interval_s)
                                    : default_interval;
  double ival = CDTIME_T_TO_DOUBLE(t->interval);
  if (!seen.timeout && ival * 0.8 < t->req.timeout_s)
    t->req.timeout_s = ival * 0.8;
  if (t->req.timeout_s >= ival) {
    spc_msg(err, errlen,
            "Target \"%s\": Timeout: %g s must be below Interval (%g s)",
            t->name, t->req.timeout_s, ival);
    goto fail;
  }
  if (spc_target_auth(t, why, sizeof(why)) != 0 ||
      (t->policy_file != NULL &&
       spc_target_policy(t, &seen, why, sizeof(why)) != 0)) {
    spc_msg(err, errlen, "Target \"%s\": %s", t->name, why);
    goto fail;
  }
  /* Cannot fail (a valid constant); validate would name an empty list. */
  if (t->req.nports == 0)
    (void)sp_request_set(&t->req, "ports", SPC_DEFAULT_PORTS, why, sizeof(why));
  if (sp_request_validate(&t->req, why, sizeof(why)) == 0) {
    char warn[SPC_MAX_ERR], msg[SPC_MAX_ERR];
    sp_request_warnings(&t->req, warn, sizeof(warn));
    spc_translate(warn, msg, sizeof(msg));
    if (msg[0] != '\0')
      WARNING(SPC_PLUGIN ": Target \"%s\": %s", t->name, msg);
    return t;
  }
  char msg[SPC_MAX_ERR];
  spc_translate(why, msg, sizeof(msg));
  spc_msg(err, errlen, "Target \"%s\": %s", t->name, msg);
fail:
  spc_target_free(t);
  return NULL;
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
  /* In place: sp_sanitize writes no faster than it reads. */
  sp_sanitize(n->message, sizeof(n->message), n->message,
              strnlen(n->message, sizeof(n->message)));
  plugin_dispatch_notification(n);
}

/* Notify the recommendation ("which port should this app use?") of a
 * target when it changes, the first one included: OKAY when a port is
 * recommended, WARNING when no port works for an app. */
static void spc_notify_recommendation(struct spc_target *t,
                                      const struct sp_recommendation *rec,
                                      cdtime_t when) {
  if (rec->text[0] == '\0' || strcmp(rec->text, t->recommended) == 0)
    return;
  sstrncpy(t->recommended, rec->text, sizeof(t->recommended));
  notification_t n;
  spc_notif_init(&n, rec->has ? NOTIF_OKAY : NOTIF_WARNING, when, t->name,
                 "recommendation");
  int len = snprintf(n.message, sizeof(n.message), "%s recommend: %s", t->name,
                     rec->text);
  spc_notif_send(&n, len);
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
  /* Per result, so that each deviation belongs to it (with AllAddresses a
   * port has several results). */
  if (t->policy != NULL)
    ndevs = sp_policy_check_result(t->policy, res, devs, SPC_MAX_DEVIATIONS);
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
  if (t->policy != NULL) /* the policy may have changed codes */
    sp_recommend(batch, &batch->recommendation);
  spc_notify_recommendation(t, &batch->recommendation, when);
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
