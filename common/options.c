/*
 * options.c - the one option vocabulary of every adapter.
 *
 * In the spirit of curl's option table behind curl_easy_setopt: one row
 * per probe option (canonical key, value grammar, bounds, default, one
 * line of documentation) and one entry point, sp_request_set(), that
 * parses a value written as text and sets the request field. Adapters
 * keep only their spelling of each key (--min-tls, MinTLS,
 * min_tls_version) in a small name map, and the options that are truly
 * theirs (Nagios thresholds, collectd's Interval, the exporter's HTTP
 * flags). The same text is accepted or refused the same way, with the
 * same words, everywhere; the adapter puts its own spelling of the key
 * in front of the message.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "probe_internal.h"
#include "smtp_probe.h"

/* Where a row's value goes in struct sp_request. */
enum field {
  F_HOST,
  F_PORTS,
  F_TLS,
  F_ROLE,
  F_SNI,
  F_CAFILE,
  F_NO_VERIFY,
  F_EHLO,
  F_FAMILY,
  F_ALL_ADDRESSES,
  F_SOURCE,
  F_TIMEOUT,
  F_BANNER_WAIT,
  F_DNS_SERVER,
  F_CERT_WARN_DAYS,
  F_CERT_CRIT_DAYS,
  F_AUTH_USER,
  F_AUTH_MECH,
  F_MAIL_FROM,
  F_RCPT_TO,
  F_SEND,
  F_CHECK_INJECTION,
  F_TLS_TRIAL,
  F_PROXY,
  F_CLIENT_CERT,
  F_CLIENT_KEY,
  F_MIN_TLS,
  F_PROVIDER
};

/* One row of the table: the public part and where it goes. */
struct row {
  struct sp_option opt; /* key, grammar, bounds, default, description */
  enum field field;     /* the request field it sets */
};

/* The table: every probe option, in the order help texts list them. */
static const struct row rows[] = {
    {{"host", SP_GRAM_HOST, 0, 0, "(required)",
      "mail server name or IP literal"},
     F_HOST},
    {{"ports", SP_GRAM_PORTS, 1, 65535, "adapter's (see its docs)",
      "ports probed in parallel, comma separated; repeats are ignored"},
     F_PORTS},
    {{"tls", SP_GRAM_TLS_MODE, 0, 0, "auto",
      "TLS mode of every port: auto (implicit on the implicit role, else "
      "STARTTLS), none, starttls, implicit"},
     F_TLS},
    {{"role", SP_GRAM_ROLE, 0, 0, "default",
      "role of every port: default (465 implicit, 25 relay, others "
      "submission), submission, implicit, relay"},
     F_ROLE},
    {{"sni", SP_GRAM_HOST, 0, 0, "the host, unless an IP literal",
      "SNI and certificate verification name"},
     F_SNI},
    {{"cafile", SP_GRAM_PATH, 0, 0, "the system store",
      "trust anchors (PEM file)"},
     F_CAFILE},
    {{"no_verify", SP_GRAM_BOOL, 0, 0, "false",
      "skip chain and host name verification"},
     F_NO_VERIFY},
    {{"ehlo", SP_GRAM_HOST, 0, 0, "the local FQDN", "EHLO argument"}, F_EHLO},
    {{"family", SP_GRAM_FAMILY, 0, 0, "any", "address family: any, ipv4, ipv6"},
     F_FAMILY},
    {{"all_addresses", SP_GRAM_BOOL, 0, 0, "false",
      "one result per resolved address"},
     F_ALL_ADDRESSES},
    {{"source", SP_GRAM_IP, 0, 0, "any", "local IP address to bind"}, F_SOURCE},
    {{"timeout", SP_GRAM_SECONDS, 0, 3600, "10s",
      "deadline of the whole probe (seconds, or a duration: 500ms, 1m30s)"},
     F_TIMEOUT},
    {{"banner_wait", SP_GRAM_SECONDS, 0, 3600, "min(2s, timeout/3)",
      "greeting wait before the implicit-TLS trial starts beside it"},
     F_BANNER_WAIT},
    {{"dns_server", SP_GRAM_IP_PORT, 0, 0, "the system's",
      "resolver to ask, IP[:PORT]"},
     F_DNS_SERVER},
    {{"cert_warn_days", SP_GRAM_INT, -1, 36500, "off",
      "cert_expiring (WARNING) below this many days (off or -1: never)"},
     F_CERT_WARN_DAYS},
    {{"cert_crit_days", SP_GRAM_INT, -1, 36500, "off",
      "cert_expiring is CRITICAL below this many days (off or -1: never)"},
     F_CERT_CRIT_DAYS},
    {{"auth_user", SP_GRAM_TEXT, 1, SP_MAX_HOST - 1, "none (no AUTH)",
      "AUTH identity; the secret comes from a file or the environment"},
     F_AUTH_USER},
    {{"auth_mech", SP_GRAM_MECH, 0, 0, "the strongest both sides speak",
      "AUTH mechanism: PLAIN, LOGIN, CRAM-MD5, XOAUTH2"},
     F_AUTH_MECH},
    {{"mail_from", SP_GRAM_TEXT, 1, SP_MAX_HOST - 1, "none",
      "MAIL FROM trial address"},
     F_MAIL_FROM},
    {{"rcpt_to", SP_GRAM_TEXT, 1, SP_MAX_HOST - 1, "none",
      "RCPT TO trial address (needs mail_from)"},
     F_RCPT_TO},
    {{"send", SP_GRAM_BOOL, 0, 0, "false",
      "also send a small test message (needs mail_from and rcpt_to)"},
     F_SEND},
    {{"check_injection", SP_GRAM_BOOL, 0, 0, "false",
      "STARTTLS command-injection test on a connection of its own"},
     F_CHECK_INJECTION},
    {{"tls_trial", SP_GRAM_BOOL, 0, 0, "true",
      "implicit-TLS trial beside a late greeting (never on the relay role)"},
     F_TLS_TRIAL},
    {{"proxy_protocol", SP_GRAM_PROXY, 0, 0, "none",
      "PROXY protocol header (v1 or v2) first on every connection, with the "
      "real socket addresses, for servers behind a load balancer"},
     F_PROXY},
    {{"client_cert", SP_GRAM_PATH, 0, 0, "none",
      "TLS client certificate chain (PEM), sent when the server asks"},
     F_CLIENT_CERT},
    {{"client_key", SP_GRAM_PATH, 0, 0, "none",
      "its private key (PEM; a secret file: mode 600)"},
     F_CLIENT_KEY},
    {{"min_tls", SP_GRAM_TLS_VERSION, 0, 0, "1.2",
      "lowest acceptable TLS version: 1.0, 1.1, 1.2, 1.3"},
     F_MIN_TLS},
    {{"provider", SP_GRAM_NAME, 1, 31, "none",
      "probe what a mail provider documents (data/providers.yml: gmail, "
      "microsoft365, sendgrid, ses, mailgun, postmark, brevo, zoho, "
      "fastmail, icloud, ...): its host unless one is given, its ports "
      "and TLS modes; a deviation, or a host of another provider, is "
      "policy_violation"},
     F_PROVIDER},
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* The options, for help texts and the tests that check docs against them. */
const struct sp_option *sp_option_at(size_t i) {
  return i < NROWS ? &rows[i].opt : NULL;
}

/* The row of a canonical key, or NULL. */
static const struct row *row_find(const char *key) {
  for (size_t i = 0; key && i < NROWS; i++)
    if (strcmp(rows[i].opt.key, key) == 0)
      return &rows[i];
  return NULL;
}

/* The option of a canonical key, or NULL. */
const struct sp_option *sp_option_find(const char *key) {
  const struct row *r = row_find(key);
  return r ? &r->opt : NULL;
}

/* ---- Value grammars ---------------------------------------------------- */

/* Parse a boolean word: true/false, yes/no, on/off, 1/0 (any case). */
int sp_parse_bool(const char *s, bool *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; s && i < sizeof(yes) / sizeof(yes[0]); i++) {
    if (strcasecmp(s, yes[i]) == 0)
      return *out = true, 0;
    if (strcasecmp(s, no[i]) == 0)
      return *out = false, 0;
  }
  return -1;
}

/* Parse seconds: a plain number ("2.5"), or a Prometheus-style duration
 * of units ms, s, m, h, d in falling order ("1m30s", "500ms"). */
int sp_parse_seconds(const char *s, double *out) {
  if (!s || !*s || strlen(s) > 32)
    return -1;
  char *end = NULL;
  double v = strtod(s, &end);
  if (end != s && *end == '\0')
    return isfinite(v) && v >= 0 ? (*out = v, 0) : -1;
  static const struct {
    const char *unit; /* suffix */
    double seconds;   /* its length */
  } units[] = {{"d", 86400}, {"h", 3600}, {"ms", 0.001}, {"m", 60}, {"s", 1}};
  double total = 0;
  int last = -1; /* index of the previous unit: units must fall */
  const char *p = s;
  while (*p) {
    if (*p < '0' || *p > '9')
      return -1;
    long n = strtol(p, &end, 10);
    if (end == p || n < 0 || n > 100000000)
      return -1;
    p = end;
    int u = -1;
    for (int i = 0; i < (int)(sizeof(units) / sizeof(units[0])); i++) {
      /* "ms" comes before "m" in the list, so "500ms" is not 500 m. */
      if (strncmp(p, units[i].unit, strlen(units[i].unit)) == 0) {
        u = i;
        break;
      }
    }
    if (u < 0 || units[u].seconds >= (last < 0 ? 1e18 : units[last].seconds))
      return -1;
    total += (double)n * units[u].seconds;
    last = u;
    p += strlen(units[u].unit);
  }
  *out = total;
  return 0;
}

/* Parse an address family word: any, ipv4, ipv6 (also 4/6, ip4/ip6). */
int sp_family_from_name(const char *s) {
  static const struct {
    const char *word;      /* as written */
    enum sp_family family; /* what it means */
  } words[] = {{"any", SP_FAMILY_ANY},   {"ipv4", SP_FAMILY_IPV4},
               {"ip4", SP_FAMILY_IPV4},  {"4", SP_FAMILY_IPV4},
               {"ipv6", SP_FAMILY_IPV6}, {"ip6", SP_FAMILY_IPV6},
               {"6", SP_FAMILY_IPV6}};
  for (size_t i = 0; s && i < sizeof(words) / sizeof(words[0]); i++)
    if (strcasecmp(s, words[i].word) == 0)
      return (int)words[i].family;
  return -1;
}

/* Append a port list ("587,465" or "587 465") to the request; ports
 * already there are ignored. */
static int set_ports(struct sp_request *req, const char *s, char *err,
                     size_t errlen) {
  const char *p = s;
  int added = 0;
  while (*p) {
    while (*p == ',' || *p == ' ')
      p++;
    if (!*p)
      break;
    char *end = NULL;
    long port = strtol(p, &end, 10);
    if (end == p || (*end && *end != ',' && *end != ' ') || port < 1 ||
        port > 65535) {
      char shown[48];
      sp_sanitize(shown, sizeof(shown), s, strnlen(s, 40));
      snprintf(err, errlen, "'%s' is not a list of ports 1-65535", shown);
      return -1;
    }
    p = end;
    added++;
    bool seen = false;
    for (int i = 0; i < req->nports; i++)
      seen = seen || req->ports[i].port == port;
    if (seen)
      continue;
    if (sp_request_add_port(req, (uint16_t)port, SP_TLS_AUTO,
                            SP_ROLE_DEFAULT) != 0) {
      snprintf(err, errlen, "more than %d ports", SP_MAX_PORTS);
      return -1;
    }
  }
  if (added == 0) {
    snprintf(err, errlen, "no port given");
    return -1;
  }
  return 0;
}

/* Parse an integer within the row's bounds; a row whose minimum is -1
 * means "off" by it, and takes the word off too. */
static int parse_int(const struct sp_option *o, const char *s, int *out,
                     char *err, size_t errlen) {
  if (o->min == -1 && s && strcasecmp(s, "off") == 0) {
    *out = -1;
    return 0;
  }
  char *end = NULL;
  long v = s && *s ? strtol(s, &end, 10) : 0;
  if (!s || !*s || *end || v < o->min || v > o->max) {
    char shown[48];
    sp_sanitize(shown, sizeof(shown), s ? s : "", s ? strnlen(s, 40) : 0);
    if (o->min == -1)
      snprintf(err, errlen, "'%s' is not a whole number 0-%ld, or off", shown,
               o->max);
    else
      snprintf(err, errlen, "'%s' is not a whole number %ld-%ld", shown, o->min,
               o->max);
    return -1;
  }
  *out = (int)v;
  return 0;
}

/* Check a text value's length and characters (printable, no spaces). */
static int check_text(const struct sp_option *o, const char *s, char *err,
                      size_t errlen) {
  size_t n = strnlen(s, SP_MAX_HOST + 1);
  bool ok = n >= (size_t)o->min && n <= (size_t)o->max;
  for (size_t i = 0; ok && i < n; i++)
    ok = (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f &&
         s[i] != '<' && s[i] != '>';
  if (!ok) {
    snprintf(err, errlen,
             "empty, longer than %ld characters, or not printable "
             "without spaces and angle brackets",
             o->max);
    return -1;
  }
  return 0;
}

/* Check a name value: letters, digits, '-' and '.', within the bounds. */
static int check_name(const struct sp_option *o, const char *s, char *err,
                      size_t errlen) {
  size_t n = strnlen(s, SP_MAX_HOST + 1);
  bool ok = n >= (size_t)o->min && n <= (size_t)o->max;
  for (size_t i = 0; ok && i < n; i++)
    ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
         (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.';
  if (!ok) {
    char shown[48];
    sp_sanitize(shown, sizeof(shown), s, strnlen(s, 40));
    snprintf(err, errlen,
             "'%s' is not a name (%ld-%ld letters, digits, '-', '.')", shown,
             o->min, o->max);
    return -1;
  }
  return 0;
}

/* ---- The entry point --------------------------------------------------- */

/* Set one request field from its text value (see smtp_probe.h). */
int sp_request_set(struct sp_request *req, const char *key, const char *value,
                   char *err, size_t errlen) {
  const struct row *r = row_find(key);
  if (!r) {
    snprintf(err, errlen, "unknown option");
    return -1;
  }
  if (!value) {
    snprintf(err, errlen, "needs a value");
    return -1;
  }
  const struct sp_option *o = &r->opt;
  /* What came in, safe to quote in a one-line message. */
  char shown[48];
  sp_sanitize(shown, sizeof(shown), value, strnlen(value, 40));
  bool b = false;
  double d = 0;
  int v = 0;
  switch (o->grammar) {
  case SP_GRAM_BOOL:
    if (sp_parse_bool(value, &b) != 0) {
      snprintf(err, errlen, "'%.40s' is not true or false", shown);
      return -1;
    }
    break;
  case SP_GRAM_SECONDS:
    if (sp_parse_seconds(value, &d) != 0 || d > (double)o->max) {
      snprintf(err, errlen,
               "'%.40s' is not a number of seconds 0-%ld (or a duration "
               "such as 500ms, 1m30s)",
               shown, o->max);
      return -1;
    }
    break;
  case SP_GRAM_TLS_MODE:
    v = sp_tls_mode_from_name(value);
    if (v < 0) {
      snprintf(err, errlen, "'%.40s' is not auto, none, starttls or implicit",
               shown);
      return -1;
    }
    break;
  case SP_GRAM_TLS_VERSION:
    v = sp_tls_version_from_name(value);
    if (v == 0) {
      snprintf(err, errlen, "'%.40s' is not 1.0, 1.1, 1.2 or 1.3", shown);
      return -1;
    }
    break;
  case SP_GRAM_ROLE:
    v = sp_role_from_name(value);
    if (v < 0) {
      snprintf(err, errlen,
               "'%.40s' is not default, submission, implicit or relay", shown);
      return -1;
    }
    break;
  case SP_GRAM_FAMILY:
    v = sp_family_from_name(value);
    if (v < 0) {
      snprintf(err, errlen, "'%.40s' is not any, ipv4 or ipv6", shown);
      return -1;
    }
    break;
  case SP_GRAM_MECH:
    if (!sp_auth_mech_canonical(value)) {
      snprintf(err, errlen, "'%.40s' is not PLAIN, LOGIN, CRAM-MD5 or XOAUTH2",
               shown);
      return -1;
    }
    value = sp_auth_mech_canonical(value);
    break;
  case SP_GRAM_HOST:
    if (!sp_host_is_valid(value)) {
      snprintf(err, errlen, "'%.40s' is not a host name or IP address", shown);
      return -1;
    }
    break;
  case SP_GRAM_IP:
    if (!sp_ip_port_is_valid(value, false)) {
      snprintf(err, errlen, "'%.40s' is not an IP address", shown);
      return -1;
    }
    break;
  case SP_GRAM_IP_PORT:
    if (!sp_ip_port_is_valid(value, true)) {
      snprintf(err, errlen, "'%.40s' is not IP[:PORT] with an IP address",
               shown);
      return -1;
    }
    break;
  case SP_GRAM_PATH:
    if (!*value || strlen(value) > 4095) {
      snprintf(err, errlen, "an empty or overlong path");
      return -1;
    }
    break;
  case SP_GRAM_TEXT:
    if (check_text(o, value, err, errlen) != 0)
      return -1;
    break;
  case SP_GRAM_INT:
    if (parse_int(o, value, &v, err, errlen) != 0)
      return -1;
    break;
  case SP_GRAM_PROXY:
    v = strcasecmp(value, "none") == 0 ? SP_PROXY_NONE
        : strcasecmp(value, "v1") == 0 ? SP_PROXY_V1
        : strcasecmp(value, "v2") == 0 ? SP_PROXY_V2
                                       : -1;
    if (v < 0) {
      snprintf(err, errlen, "'%.40s' is not none, v1 or v2", shown);
      return -1;
    }
    break;
  case SP_GRAM_NAME:
    if (check_name(o, value, err, errlen) != 0)
      return -1;
    break;
  case SP_GRAM_PORTS:
    break;
  }
  switch (r->field) {
  case F_HOST:
    req->host = value;
    break;
  case F_PORTS:
    return set_ports(req, value, err, errlen);
  case F_TLS:
    req->tls_mode = (enum sp_tls_mode)v;
    break;
  case F_ROLE:
    req->role = (enum sp_role)v;
    break;
  case F_SNI:
    req->sni = value;
    break;
  case F_CAFILE:
    req->cafile = value;
    break;
  case F_NO_VERIFY:
    req->no_verify = b;
    break;
  case F_EHLO:
    req->ehlo_name = value;
    break;
  case F_FAMILY:
    req->family = (enum sp_family)v;
    break;
  case F_ALL_ADDRESSES:
    req->all_addresses = b;
    break;
  case F_SOURCE:
    req->source = value;
    break;
  case F_TIMEOUT:
    if (!(d > 0)) {
      snprintf(err, errlen, "must be above 0");
      return -1;
    }
    req->timeout_s = d;
    break;
  case F_BANNER_WAIT:
    req->banner_wait_s = d;
    break;
  case F_DNS_SERVER:
    req->dns_server = value;
    break;
  case F_CERT_WARN_DAYS:
    req->cert_warn_days = v;
    break;
  case F_CERT_CRIT_DAYS:
    req->cert_crit_days = v;
    break;
  case F_AUTH_USER:
    req->auth_user = value;
    break;
  case F_AUTH_MECH:
    req->auth_mech = value;
    break;
  case F_MAIL_FROM:
    req->mail_from = value;
    break;
  case F_RCPT_TO:
    req->rcpt_to = value;
    break;
  case F_SEND:
    req->send_message = b;
    break;
  case F_CHECK_INJECTION:
    req->check_injection = b;
    break;
  case F_TLS_TRIAL:
    req->no_tls_trial = !b;
    break;
  case F_PROXY:
    req->proxy_protocol = (enum sp_proxy)v;
    break;
  case F_CLIENT_CERT:
    req->client_cert = value;
    break;
  case F_CLIENT_KEY:
    req->client_key = value;
    break;
  case F_MIN_TLS:
    req->min_tls_version = v;
    break;
  case F_PROVIDER:
    return sp_request_set_provider(req, value, err, errlen);
  }
  return 0;
}
