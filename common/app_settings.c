/*
 * app_settings.c - "can this app's mail settings work?": an app's SMTP
 * settings (a URL as Symfony Mailer, Laravel and nodemailer write them, or
 * the framework's own KEY=VALUE settings) read by that framework's rules
 * into the TLS mode the app would use, and compared with the mode the
 * server on that port speaks, with the fix in the framework's own words.
 *
 * The table (also in nagios/USAGE.md and docs/app-settings.md):
 *
 *   framework  implicit TLS                STARTTLS                 plaintext
 *   generic    smtps://, tls=implicit      smtp:// (if offered),
 * starttls=false, encryption=ssl              starttls=true/required   tls=none
 *   symfony    smtps://, smtp:// on 465,   smtp:// elsewhere (if auto_tls=false
 *              smtp://host (no port)       offered), require_tls
 *   laravel    MAIL_SCHEME=smtps, port 465 any other port (if       -
 *              (MAIL_ENCRYPTION ignored)   offered)
 *   nodemailer secure=true, smtps://       secure=false (if ignoreTLS=true
 *                                          offered), requireTLS
 *   django     EMAIL_USE_SSL=True          EMAIL_USE_TLS=True       neither
 *   spring     mail.smtp.ssl.enable=true,  mail.smtp.starttls.      neither
 *              protocol=smtps              enable (.required)
 *
 * Secrets: a password (URL userinfo, a *PASSWORD / *PASS / *SECRET /
 * *TOKEN key) is refused from the command line without being echoed; from
 * a file it is kept in s->secret and never written into any text.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_probe.h"

#define APP_MAX_FILE 65536 /* bytes of a settings file */
#define APP_MAX_LINE 1024  /* bytes of one setting or URL */
#define APP_MAX_SET 64     /* settings taken at most */

/* The pointer the refusal of a password on the command line gives. */
#define APP_NO_SECRET_ARGV                                                     \
  "is not taken from the command line (nor shown): put the settings in a "     \
  "file for --app-settings-file, or test AUTH with --auth-user and "           \
  "--auth-password-file"

/* One framework: its words for the fixes and its defaults. */
struct app_words {
  const char *name;        /* the option's word */
  const char *title;       /* as sentences name it */
  const char *to_implicit; /* the fix that asks for implicit TLS */
  const char *to_starttls; /* the fix that asks for STARTTLS */
  const char *plain_said;  /* the default that sends plaintext, or NULL */
  const char *opport_said; /* the default that uses STARTTLS if offered */
};

/* The framework table (index: enum sp_app_framework). */
static const struct app_words words[SP_APP_FRAMEWORK_COUNT] = {
    {"generic", "a curl-style URL", "use smtps://", "use smtp:// with STARTTLS",
     "starttls=false", "smtp://"},
    {"symfony", "Symfony Mailer", "use smtps://", "use smtp://",
     "auto_tls=false", "smtp://"},
    {"laravel", "Laravel", "set MAIL_SCHEME=smtps", "set MAIL_SCHEME=smtp",
     NULL, "MAIL_SCHEME unset"},
    {"nodemailer", "nodemailer", "set secure=true", "set secure=false",
     "ignoreTLS=true", "secure=false (the default)"},
    {"django", "Django", "set EMAIL_USE_SSL=True", "set EMAIL_USE_TLS=True",
     "EMAIL_USE_TLS=False (the default)", NULL},
    {"spring", "Spring", "set mail.smtp.ssl.enable=true",
     "set mail.smtp.starttls.enable=true",
     "mail.smtp.starttls.enable=false (the default)", NULL},
};

/* What a key of a framework sets. */
enum app_field {
  F_URL,      /* a whole URL */
  F_HOST,     /* host name */
  F_PORT,     /* port number */
  F_USER,     /* AUTH user */
  F_SECRET,   /* password: never from argv */
  F_USE_TLS,  /* STARTTLS switch (bool) */
  F_USE_SSL,  /* implicit-TLS switch (bool) */
  F_REQUIRE,  /* STARTTLS required (bool) */
  F_IGNORE,   /* STARTTLS never (bool) */
  F_NOT_AUTO, /* Symfony auto_tls: false means never STARTTLS */
  F_SCHEME,   /* Laravel MAIL_SCHEME / Spring protocol: smtp, smtps */
  F_ENCRYPT,  /* Laravel / generic encryption: tls, ssl, starttls, none */
  F_TLS,      /* generic tls=none|starttls|implicit|opportunistic */
  F_STARTTLS, /* generic starttls=true|false|required */
  F_MAILER,   /* Laravel MAIL_MAILER: must be smtp */
  F_SKIP      /* known but irrelevant here */
};

/* One key a framework reads. */
struct app_key {
  unsigned fw;          /* bit per framework that reads it */
  const char *key;      /* the key (any case) */
  enum app_field field; /* what it sets */
};

#define FW(x) (1u << (x))
#define ALL 0x3fu

/* Every key, per framework (URL query options included). */
static const struct app_key keys[] = {
    {ALL, "url", F_URL},
    {FW(SP_APP_GENERIC) | FW(SP_APP_NODEMAILER), "host", F_HOST},
    {FW(SP_APP_GENERIC) | FW(SP_APP_NODEMAILER), "port", F_PORT},
    {FW(SP_APP_GENERIC) | FW(SP_APP_NODEMAILER), "user", F_USER},
    {FW(SP_APP_GENERIC), "password", F_SECRET},
    {FW(SP_APP_GENERIC), "tls", F_TLS},
    {FW(SP_APP_GENERIC), "starttls", F_STARTTLS},
    {FW(SP_APP_GENERIC) | FW(SP_APP_LARAVEL), "encryption", F_ENCRYPT},
    {FW(SP_APP_SYMFONY), "MAILER_DSN", F_URL},
    {FW(SP_APP_SYMFONY), "MAILER_URL", F_URL},
    {FW(SP_APP_SYMFONY) | FW(SP_APP_LARAVEL), "auto_tls", F_NOT_AUTO},
    {FW(SP_APP_SYMFONY) | FW(SP_APP_LARAVEL), "require_tls", F_REQUIRE},
    {FW(SP_APP_SYMFONY), "verify_peer", F_SKIP},
    {FW(SP_APP_SYMFONY), "local_domain", F_SKIP},
    {FW(SP_APP_LARAVEL), "MAIL_URL", F_URL},
    {FW(SP_APP_LARAVEL), "MAIL_HOST", F_HOST},
    {FW(SP_APP_LARAVEL), "MAIL_PORT", F_PORT},
    {FW(SP_APP_LARAVEL), "MAIL_USERNAME", F_USER},
    {FW(SP_APP_LARAVEL), "MAIL_PASSWORD", F_SECRET},
    {FW(SP_APP_LARAVEL), "MAIL_ENCRYPTION", F_ENCRYPT},
    {FW(SP_APP_LARAVEL), "MAIL_SCHEME", F_SCHEME},
    {FW(SP_APP_LARAVEL), "scheme", F_SCHEME},
    {FW(SP_APP_LARAVEL), "MAIL_MAILER", F_MAILER},
    {FW(SP_APP_NODEMAILER), "secure", F_USE_SSL},
    {FW(SP_APP_NODEMAILER), "requireTLS", F_REQUIRE},
    {FW(SP_APP_NODEMAILER), "ignoreTLS", F_IGNORE},
    {FW(SP_APP_NODEMAILER), "auth.user", F_USER},
    {FW(SP_APP_NODEMAILER), "auth.pass", F_SECRET},
    {FW(SP_APP_NODEMAILER), "pass", F_SECRET},
    {FW(SP_APP_DJANGO), "EMAIL_URL", F_URL},
    {FW(SP_APP_DJANGO), "EMAIL_HOST", F_HOST},
    {FW(SP_APP_DJANGO), "EMAIL_PORT", F_PORT},
    {FW(SP_APP_DJANGO), "EMAIL_HOST_USER", F_USER},
    {FW(SP_APP_DJANGO), "EMAIL_HOST_PASSWORD", F_SECRET},
    {FW(SP_APP_DJANGO), "EMAIL_USE_TLS", F_USE_TLS},
    {FW(SP_APP_DJANGO), "EMAIL_USE_SSL", F_USE_SSL},
    {FW(SP_APP_DJANGO), "EMAIL_BACKEND", F_SKIP},
    {FW(SP_APP_DJANGO), "EMAIL_TIMEOUT", F_SKIP},
    {FW(SP_APP_SPRING), "spring.mail.host", F_HOST},
    {FW(SP_APP_SPRING), "mail.smtp.host", F_HOST},
    {FW(SP_APP_SPRING), "spring.mail.port", F_PORT},
    {FW(SP_APP_SPRING), "mail.smtp.port", F_PORT},
    {FW(SP_APP_SPRING), "spring.mail.username", F_USER},
    {FW(SP_APP_SPRING), "mail.smtp.user", F_USER},
    {FW(SP_APP_SPRING), "spring.mail.password", F_SECRET},
    {FW(SP_APP_SPRING), "spring.mail.protocol", F_SCHEME},
    {FW(SP_APP_SPRING), "mail.transport.protocol", F_SCHEME},
    {FW(SP_APP_SPRING), "mail.smtp.starttls.enable", F_USE_TLS},
    {FW(SP_APP_SPRING), "mail.smtp.starttls.required", F_REQUIRE},
    {FW(SP_APP_SPRING), "mail.smtp.ssl.enable", F_USE_SSL},
    {FW(SP_APP_SPRING), "spring.mail.ssl.enabled", F_USE_SSL},
    {FW(SP_APP_SPRING), "mail.smtp.auth", F_SKIP},
};

/* Copy at most dstlen-1 bytes of src (n bytes) into dst, NUL-terminated. */
static void copy(char *dst, size_t dstlen, const char *src, size_t n) {
  if (dstlen == 0)
    return;
  if (n >= dstlen)
    n = dstlen - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* The framework's word. */
const char *sp_app_framework_name(enum sp_app_framework fw) {
  return (unsigned)fw < SP_APP_FRAMEWORK_COUNT ? words[fw].name : "?";
}

/* A framework word (any case), or -1. */
int sp_app_framework_from_name(const char *name) {
  for (int i = 0; name && i < SP_APP_FRAMEWORK_COUNT; i++)
    if (strcasecmp(name, words[i].name) == 0)
      return i;
  return -1;
}

/* The app TLS mode's word. */
const char *sp_app_tls_name(enum sp_app_tls tls) {
  switch (tls) {
  case SP_APP_TLS_PLAIN:
    return "plaintext";
  case SP_APP_TLS_OPPORTUNISTIC:
    return "starttls-if-offered";
  case SP_APP_TLS_STARTTLS:
    return "starttls";
  case SP_APP_TLS_IMPLICIT:
    return "implicit";
  }
  return "?";
}

/* Empty settings. */
void sp_app_init(struct sp_app_settings *s, enum sp_app_framework fw) {
  memset(s, 0, sizeof(*s));
  s->framework = (unsigned)fw < SP_APP_FRAMEWORK_COUNT ? fw : SP_APP_GENERIC;
  s->use_tls = s->use_ssl = s->require_tls = s->ignore_tls = -1;
}

/* Wipe the secret. */
void sp_app_wipe(struct sp_app_settings *s) {
  volatile char *p = s->secret;
  for (size_t i = 0; i < sizeof(s->secret); i++)
    p[i] = 0;
  s->has_secret = false;
}

/* Whether a key names a secret (password, pass, secret, token). */
static bool secret_key(const char *key) {
  static const char *const parts[] = {"pass", "secret", "token", "pwd"};
  char low[APP_MAX_LINE];
  size_t n = strlen(key);
  copy(low, sizeof(low), key, n);
  for (size_t i = 0; low[i]; i++)
    low[i] = (char)tolower((unsigned char)low[i]);
  for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
    if (strstr(low, parts[i]))
      return true;
  return false;
}

/* Printable ASCII without spaces and at most max bytes. */
static bool token_ok(const char *v, size_t max) {
  size_t n = strlen(v);
  if (n == 0 || n > max)
    return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
      return false;
  return true;
}

/* A key: letters, digits, '.', '_', '-' (so an error may name it). */
static bool key_ok(const char *k) {
  size_t n = strlen(k);
  if (n == 0 || n > 80)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)k[i]) && !strchr("._-", k[i]))
      return false;
  return true;
}

/* A boolean the way the frameworks write them (True, true, 1, yes, on). */
static int parse_bool(const char *v, bool *out) {
  return sp_parse_bool(v, out);
}

/* Remember "KEY=VALUE" as written (sanitised, cut to fit). */
static void said(char *dst, size_t dstlen, const char *key, const char *v) {
  char raw[160];
  snprintf(raw, sizeof(raw), "%.60s=%.60s", key, v);
  sp_sanitize(dst, dstlen, raw, strlen(raw));
}

/* Set a tri-state switch from a boolean value; -1 with err when it is not
 * one. */
static int set_switch(int *sw, char *said_buf, size_t saidlen, const char *key,
                      const char *v, bool invert, char *err, size_t errlen) {
  bool b;
  if (parse_bool(v, &b) != 0)
    return snprintf(err, errlen, "%.60s: '%.40s' is not true or false", key, v),
           -1;
  *sw = (b != invert) ? 1 : 0;
  said(said_buf, saidlen, key, v);
  return 0;
}

/* Take a port number. */
static int set_port(struct sp_app_settings *s, const char *key, const char *v,
                    char *err, size_t errlen) {
  char *end;
  errno = 0;
  long p = strtol(v, &end, 10);
  if (!*v || *end || errno || p < 1 || p > 65535)
    return snprintf(err, errlen, "%.60s: '%.40s' is not a port 1-65535", key,
                    v),
           -1;
  s->port = (uint16_t)p;
  return 0;
}

/* Take a host name or IP literal (brackets of [IPv6] dropped). */
static int set_host(struct sp_app_settings *s, const char *key, const char *v,
                    size_t n, char *err, size_t errlen) {
  if (n >= 2 && v[0] == '[' && v[n - 1] == ']')
    v++, n -= 2;
  char host[SP_MAX_HOST];
  if (n == 0 || n >= sizeof(host))
    return snprintf(err, errlen, "%.60s: no host name, or one too long", key),
           -1;
  copy(host, sizeof(host), v, n);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)host[i];
    if (!isalnum(c) && c != '.' && c != '-' && c != ':' && c != '_')
      return snprintf(err, errlen, "%.60s: '%.60s' is not a host name", key,
                      host),
             -1;
  }
  copy(s->host, sizeof(s->host), host, n);
  return 0;
}

/* Take the secret (from a file only). */
static int set_secret(struct sp_app_settings *s, const char *key, const char *v,
                      size_t n, enum sp_app_source src, char *err,
                      size_t errlen) {
  if (src == SP_APP_FROM_ARGV)
    return snprintf(err, errlen, "%.60s: a password " APP_NO_SECRET_ARGV, key),
           -1;
  if (n == 0)
    return 0;
  if (n >= sizeof(s->secret))
    return snprintf(err, errlen, "%.60s: the password is too long", key), -1;
  copy(s->secret, sizeof(s->secret), v, n);
  s->has_secret = true;
  return 0;
}

/* A value decoded from %XX escapes (URL parts) into out. */
static void pct_decode(char *out, size_t outlen, const char *v, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 1 < outlen; i++) {
    if (v[i] == '%' && i + 2 < n && isxdigit((unsigned char)v[i + 1]) &&
        isxdigit((unsigned char)v[i + 2])) {
      char hex[3] = {v[i + 1], v[i + 2], 0};
      out[o++] = (char)strtol(hex, NULL, 16);
      i += 2;
    } else {
      out[o++] = v[i];
    }
  }
  if (outlen)
    out[o] = '\0';
}

/* Whether an unknown key or query option looks like a TLS switch. */
static bool tls_looking(const char *key) {
  static const char *const k[] = {"encryption", "starttls", "secure",
                                  "ssl",        "tls",      "requireTLS",
                                  "ignoreTLS",  "auto_tls", "require_tls"};
  for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
    if (strcasecmp(key, k[i]) == 0)
      return true;
  return false;
}

/* Take one setting (see smtp_probe.h). */
int sp_app_set(struct sp_app_settings *s, const char *key, const char *value,
               enum sp_app_source src, char *err, size_t errlen) {
  if (errlen)
    err[0] = '\0';
  if (!key || !value || !*key)
    return snprintf(err, errlen, "a setting needs KEY=VALUE"), -1;
  if (!key_ok(key))
    return snprintf(err, errlen,
                    "a setting's key must be letters, digits, "
                    "'.', '_' or '-', at most 80 bytes"),
           -1;
  if (strlen(value) >= APP_MAX_LINE)
    return snprintf(err, errlen, "%.60s: the value is too long", key), -1;
  if (s->nset >= APP_MAX_SET)
    return snprintf(err, errlen, "more than %d settings", APP_MAX_SET), -1;
  const struct app_key *k = NULL;
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    const char *name = keys[i].key;
    /* Spring's properties also come prefixed "spring.mail.properties." */
    const char *kk = key;
    if (s->framework == SP_APP_SPRING &&
        strncasecmp(kk, "spring.mail.properties.", 23) == 0)
      kk += 23;
    if ((keys[i].fw & FW(s->framework)) && strcasecmp(kk, name) == 0) {
      k = &keys[i];
      break;
    }
  }
  if (!k && secret_key(key)) {
    if (src == SP_APP_FROM_ARGV)
      return snprintf(err, errlen, "%.60s: a password " APP_NO_SECRET_ARGV,
                      key),
             -1;
    return 0; /* another secret of the file (DB_PASSWORD): never read */
  }
  if (!k) {
    if (src == SP_APP_FROM_FILE)
      return 0; /* a file holds the app's other settings too */
    return snprintf(err, errlen,
                    "%.60s is not a setting --app-framework %s reads", key,
                    words[s->framework].name),
           -1;
  }
  s->nset++;
  size_t n = strlen(value);
  switch (k->field) {
  case F_URL:
    return sp_app_set_url(s, value, src, err, errlen);
  case F_HOST:
    return set_host(s, key, value, n, err, errlen);
  case F_PORT:
    return set_port(s, key, value, err, errlen);
  case F_USER:
    if (n && !token_ok(value, SP_MAX_TEXT - 1))
      return snprintf(err, errlen,
                      "%.60s: the user must be printable without "
                      "spaces",
                      key),
             -1;
    copy(s->user, sizeof(s->user), value, n);
    return 0;
  case F_SECRET:
    return set_secret(s, key, value, n, src, err, errlen);
  case F_USE_TLS:
    return set_switch(&s->use_tls, s->tls_said, sizeof(s->tls_said), key, value,
                      false, err, errlen);
  case F_USE_SSL:
    return set_switch(&s->use_ssl, s->ssl_said, sizeof(s->ssl_said), key, value,
                      false, err, errlen);
  case F_REQUIRE:
    return set_switch(&s->require_tls, s->req_said, sizeof(s->req_said), key,
                      value, false, err, errlen);
  case F_IGNORE:
    return set_switch(&s->ignore_tls, s->ign_said, sizeof(s->ign_said), key,
                      value, false, err, errlen);
  case F_NOT_AUTO:
    return set_switch(&s->ignore_tls, s->ign_said, sizeof(s->ign_said), key,
                      value, true, err, errlen);
  case F_SCHEME:
    if (strcasecmp(value, "smtp") != 0 && strcasecmp(value, "smtps") != 0)
      return snprintf(err, errlen, "%.60s: '%.40s' is not smtp or smtps", key,
                      value),
             -1;
    copy(s->protocol, sizeof(s->protocol), value, n);
    for (char *p = s->protocol; *p; p++)
      *p = (char)tolower((unsigned char)*p);
    return 0;
  case F_ENCRYPT:
    if (s->framework == SP_APP_LARAVEL) { /* read, but it changes nothing */
      if (n && strcasecmp(value, "tls") != 0 && strcasecmp(value, "ssl") != 0 &&
          strcasecmp(value, "null") != 0)
        return snprintf(err, errlen, "%.60s: '%.40s' is not tls, ssl or null",
                        key, value),
               -1;
      said(s->enc_said, sizeof(s->enc_said), key, value);
      return 0;
    }
    if (strcasecmp(value, "tls") == 0 || strcasecmp(value, "starttls") == 0)
      s->use_tls = 1, s->require_tls = 1,
      said(s->tls_said, sizeof(s->tls_said), key, value);
    else if (strcasecmp(value, "ssl") == 0 ||
             strcasecmp(value, "implicit") == 0)
      s->use_ssl = 1, said(s->ssl_said, sizeof(s->ssl_said), key, value);
    else if (strcasecmp(value, "none") == 0 || n == 0)
      s->ignore_tls = 1, said(s->ign_said, sizeof(s->ign_said), key, value);
    else
      return snprintf(err, errlen,
                      "%.60s: '%.40s' is not tls, starttls, ssl or none", key,
                      value),
             -1;
    return 0;
  case F_TLS: {
    int m = sp_tls_mode_from_name(value);
    bool opp = strcasecmp(value, "opportunistic") == 0;
    if (!opp && (m < 0 || m == SP_TLS_AUTO))
      return snprintf(err, errlen,
                      "%.60s: '%.40s' is not none, starttls, implicit or "
                      "opportunistic",
                      key, value),
             -1;
    s->use_tls = s->use_ssl = s->require_tls = s->ignore_tls = -1;
    if (opp)
      s->use_tls = 1, said(s->tls_said, sizeof(s->tls_said), key, value);
    else if (m == SP_TLS_STARTTLS)
      s->require_tls = 1, said(s->req_said, sizeof(s->req_said), key, value);
    else if (m == SP_TLS_IMPLICIT)
      s->use_ssl = 1, said(s->ssl_said, sizeof(s->ssl_said), key, value);
    else
      s->ignore_tls = 1, said(s->ign_said, sizeof(s->ign_said), key, value);
    return 0;
  }
  case F_STARTTLS: /* starttls=false: never; true or required: required */
    if (strcasecmp(value, "required") == 0)
      value = "true";
    if (set_switch(&s->ignore_tls, s->ign_said, sizeof(s->ign_said), key, value,
                   true, err, errlen) != 0)
      return -1;
    if (s->ignore_tls == 0) {
      s->require_tls = 1;
      said(s->req_said, sizeof(s->req_said), key, value);
    }
    return 0;
  case F_MAILER:
    if (strcasecmp(value, "smtp") != 0)
      return snprintf(err, errlen,
                      "%.60s=%.40s sends no SMTP: only the smtp mailer is "
                      "checked",
                      key, value),
             -1;
    return 0;
  case F_SKIP:
    return 0;
  }
  return 0;
}

/* Take a URL (see smtp_probe.h). */
int sp_app_set_url(struct sp_app_settings *s, const char *url,
                   enum sp_app_source src, char *err, size_t errlen) {
  if (errlen)
    err[0] = '\0';
  size_t len = url ? strlen(url) : 0;
  if (len == 0 || len >= APP_MAX_LINE)
    return snprintf(err, errlen, "the URL is empty or too long"), -1;
  const char *sep = strstr(url, "://");
  if (!sep || sep == url || sep - url > 10)
    return snprintf(err, errlen, "the URL must start with smtp:// or smtps://"),
           -1;
  char scheme[12];
  copy(scheme, sizeof(scheme), url, (size_t)(sep - url));
  for (char *p = scheme; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  bool ok =
      strcmp(scheme, "smtp") == 0 || strcmp(scheme, "smtps") == 0 ||
      (s->framework == SP_APP_DJANGO &&
       (strcmp(scheme, "smtp+tls") == 0 || strcmp(scheme, "smtp+ssl") == 0));
  if (!ok) {
    char shown[12];
    sp_sanitize(shown, sizeof(shown), scheme, strlen(scheme));
    return snprintf(err, errlen,
                    "the URL's scheme '%s' is not smtp or smtps: only SMTP "
                    "transports are checked",
                    shown),
           -1;
  }
  const char *auth = sep + 3;
  size_t alen = strcspn(auth, "/?#");
  const char *at = NULL;
  for (size_t i = 0; i < alen; i++)
    if (auth[i] == '@')
      at = auth + i;
  const char *hp = auth;
  if (at) { /* userinfo: user[:password] */
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon) {
      if (src == SP_APP_FROM_ARGV)
        return snprintf(err, errlen,
                        "the URL holds a password, which " APP_NO_SECRET_ARGV),
               -1;
      char secret[SP_MAX_SECRET];
      pct_decode(secret, sizeof(secret), colon + 1, (size_t)(at - colon - 1));
      int r = set_secret(s, "URL", secret, strlen(secret), src, err, errlen);
      memset(secret, 0, sizeof(secret));
      if (r != 0)
        return -1;
    }
    size_t ulen = (size_t)((colon ? colon : at) - auth);
    char user[SP_MAX_TEXT];
    pct_decode(user, sizeof(user), auth, ulen);
    if (user[0] && !token_ok(user, SP_MAX_TEXT - 1))
      return snprintf(err, errlen,
                      "the URL's user must be printable without spaces"),
             -1;
    copy(s->user, sizeof(s->user), user, strlen(user));
    hp = at + 1;
  }
  size_t hplen = (size_t)(auth + alen - hp);
  const char *portp = NULL;
  size_t hlen = hplen;
  if (hplen && hp[0] == '[') { /* [IPv6]:port */
    const char *close = memchr(hp, ']', hplen);
    if (!close)
      return snprintf(err, errlen, "the URL's [IPv6] host lacks its ']'"), -1;
    hlen = (size_t)(close - hp + 1);
    if (hlen < hplen) {
      if (close[1] != ':')
        return snprintf(err, errlen, "the URL's host is not [IPv6]:PORT"), -1;
      portp = close + 2;
    }
  } else {
    const char *colon = memchr(hp, ':', hplen);
    if (colon) {
      hlen = (size_t)(colon - hp);
      portp = colon + 1;
    }
  }
  if (set_host(s, "the URL", hp, hlen, err, errlen) != 0)
    return -1;
  if (portp) {
    char port[8];
    size_t plen = (size_t)(auth + alen - portp);
    if (plen == 0 || plen >= sizeof(port))
      return snprintf(err, errlen, "the URL's port is not 1-65535"), -1;
    copy(port, sizeof(port), portp, plen);
    if (set_port(s, "the URL", port, err, errlen) != 0)
      return -1;
  }
  copy(s->scheme, sizeof(s->scheme), scheme, strlen(scheme));
  const char *q = strchr(auth + alen, '?');
  const char *hash = strchr(auth + alen, '#');
  if (!q || (hash && hash < q))
    return 0;
  q++;
  size_t qlen = hash ? (size_t)(hash - q) : strlen(q);
  while (qlen > 0) { /* the query's options, KEY=VALUE&... */
    size_t n = strcspn(q, "&");
    if (n > qlen)
      n = qlen;
    char opt[APP_MAX_LINE], k[96], v[APP_MAX_LINE];
    copy(opt, sizeof(opt), q, n);
    char *eq = strchr(opt, '=');
    pct_decode(k, sizeof(k), opt, eq ? (size_t)(eq - opt) : strlen(opt));
    pct_decode(v, sizeof(v), eq ? eq + 1 : "", eq ? strlen(eq + 1) : 0);
    bool known = false;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
      if ((keys[i].fw & FW(s->framework)) && keys[i].field != F_URL &&
          strcasecmp(k, keys[i].key) == 0)
        known = true;
    if (k[0] && known) {
      if (sp_app_set(s, k, v, src, err, errlen) != 0)
        return -1;
    } else if (k[0] && secret_key(k) && src == SP_APP_FROM_ARGV) {
      return snprintf(
                 err, errlen,
                 "the URL holds a password option, which " APP_NO_SECRET_ARGV),
             -1;
    } else if (k[0] && tls_looking(k) && !s->ignored[0]) {
      said(s->ignored, sizeof(s->ignored), k, v);
    }
    q += n;
    qlen -= n;
    if (qlen > 0)
      q++, qlen--;
  }
  return 0;
}

/* Take one line of settings (see smtp_probe.h). */
int sp_app_set_line(struct sp_app_settings *s, const char *line,
                    enum sp_app_source src, char *err, size_t errlen) {
  if (errlen)
    err[0] = '\0';
  char buf[APP_MAX_LINE];
  size_t n = strlen(line);
  if (n >= sizeof(buf))
    return snprintf(err, errlen, "a setting is longer than %d bytes",
                    APP_MAX_LINE - 1),
           -1;
  memcpy(buf, line, n + 1);
  char *p = buf;
  while (*p == ' ' || *p == '\t')
    p++;
  char *end = p + strlen(p);
  while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
                     end[-1] == '\n' || end[-1] == ','))
    *--end = '\0';
  if (!*p || *p == '#' || (p[0] == '/' && p[1] == '/'))
    return 0;
  if (strncmp(p, "export ", 7) == 0)
    p += 7;
  size_t klen = strcspn(p, "=: \t");
  const char *scheme_end = strstr(p, "://");
  if (scheme_end && (size_t)(scheme_end - p) <= klen) /* a bare URL */
    return sp_app_set_url(s, p, src, err, errlen);
  char *v = p + klen;
  while (*v == ' ' || *v == '\t')
    v++;
  if (*v != '=' && *v != ':') {
    if (src == SP_APP_FROM_FILE)
      return 0; /* not a setting: a heading, a brace, code */
    return snprintf(err, errlen, "a setting is KEY=VALUE"), -1;
  }
  v++;
  p[klen] = '\0';
  while (*v == ' ' || *v == '\t')
    v++;
  size_t vlen = strlen(v);
  if (vlen >= 2 && (v[0] == '"' || v[0] == '\'') && v[vlen - 1] == v[0])
    v[vlen - 1] = '\0', v++;
  if (p[0] == '"' || p[0] == '\'') { /* a quoted key: "secure": true */
    size_t kl = strlen(p);
    if (kl >= 2 && p[kl - 1] == p[0])
      p[kl - 1] = '\0', p++;
  }
  int r = sp_app_set(s, p, v, src, err, errlen);
  memset(buf, 0, sizeof(buf)); /* it may have held a password */
  return r;
}

/* Read a settings file (see smtp_probe.h). */
int sp_app_load_file(struct sp_app_settings *s, const char *path, char *err,
                     size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f)
    return snprintf(err, errlen, "%.200s: %s", path, strerror(errno)), -1;
  char *text = malloc(APP_MAX_FILE + 1);
  if (!text) {
    fclose(f);
    return snprintf(err, errlen, "out of memory"), -1;
  }
  size_t n = fread(text, 1, APP_MAX_FILE + 1, f);
  fclose(f);
  if (n > APP_MAX_FILE) {
    free(text);
    return snprintf(err, errlen, "%.200s: larger than %d bytes", path,
                    APP_MAX_FILE),
           -1;
  }
  text[n] = '\0';
  int rc = 0, lineno = 0;
  for (char *line = text; line && rc == 0;) {
    char *nl = strchr(line, '\n');
    if (nl)
      *nl = '\0';
    lineno++;
    if (strlen(line) != (size_t)((nl ? nl : text + n) - line)) {
      snprintf(err, errlen, "%.200s line %d: a NUL byte", path, lineno);
      rc = -1;
      break;
    }
    char why[300];
    if (sp_app_set_line(s, line, SP_APP_FROM_FILE, why, sizeof(why)) != 0) {
      snprintf(err, errlen, "%.200s line %d: %s", path, lineno, why);
      rc = -1;
    }
    line = nl ? nl + 1 : NULL;
  }
  memset(text, 0, n);
  free(text);
  return rc;
}

/* Append text to the "said" sentence. */
static void say(struct sp_app_settings *s, const char *fmt, const char *a,
                const char *b) {
  size_t n = strlen(s->said);
  snprintf(s->said + n, sizeof(s->said) - n, fmt, a ? a : "", b ? b : "");
}

/* Resolve the mode by Symfony Mailer's rules (also Laravel's, whose
 * words for the scheme are smtps_said / smtp_said). */
static enum sp_app_tls symfony_tls(struct sp_app_settings *s, bool smtps,
                                   const char *smtps_said,
                                   const char *smtp_said) {
  bool local = strcasecmp(s->host, "localhost") == 0;
  if (smtps) {
    if (!s->port)
      s->port = 465;
    say(s, "%s", smtps_said, NULL);
    return SP_APP_TLS_IMPLICIT;
  }
  if (s->ignore_tls == 1) { /* auto_tls=false: tls false, never STARTTLS */
    if (!s->port)
      s->port = 25;
    say(s, "%s", s->ign_said, NULL);
    return SP_APP_TLS_PLAIN;
  }
  if (!s->port && !local) { /* no port: implicit TLS on 465 */
    s->port = 465;
    say(s, "%s without a port (465)", smtp_said, NULL);
    return SP_APP_TLS_IMPLICIT;
  }
  if (!s->port)
    s->port = 25;
  if (s->port == 465) {
    say(s, "%s on port 465", smtp_said, NULL);
    return SP_APP_TLS_IMPLICIT;
  }
  if (s->require_tls == 1) {
    say(s, "%s", s->req_said, NULL);
    return SP_APP_TLS_STARTTLS;
  }
  say(s, "%s", smtp_said, NULL);
  return SP_APP_TLS_OPPORTUNISTIC;
}

/* The TLS mode of the frameworks that read settings as curl reads URLs
 * (generic, nodemailer): smtps or an SSL setting is implicit TLS, an
 * ignore-TLS setting plaintext, a require-TLS setting STARTTLS, else
 * STARTTLS when offered; req_said and opport_said say it in their words. */
static void curl_like_tls(struct sp_app_settings *s, bool smtps,
                          const char *req_said, const char *opport_said) {
  if (smtps || s->use_ssl == 1) {
    s->tls = SP_APP_TLS_IMPLICIT;
    say(s, "%s", smtps ? "smtps://" : s->ssl_said, NULL);
  } else if (s->ignore_tls == 1) {
    s->tls = SP_APP_TLS_PLAIN;
    say(s, "%s", s->ign_said, NULL);
  } else if (s->require_tls == 1) {
    s->tls = SP_APP_TLS_STARTTLS;
    say(s, "%s", req_said, NULL);
  } else {
    s->tls = SP_APP_TLS_OPPORTUNISTIC;
    say(s, "%s", opport_said, NULL);
  }
}

/* Resolve the settings (see smtp_probe.h). */
int sp_app_finish(struct sp_app_settings *s, char *err, size_t errlen) {
  if (errlen)
    err[0] = '\0';
  s->said[0] = '\0';
  bool smtps = strcmp(s->scheme, "smtps") == 0 ||
               strcmp(s->scheme, "smtp+ssl") == 0 ||
               strcmp(s->protocol, "smtps") == 0;
  bool given = s->port != 0;
  switch (s->framework) {
  case SP_APP_GENERIC:
    curl_like_tls(s, smtps, s->req_said[0] ? s->req_said : s->tls_said,
                  s->tls_said[0] ? s->tls_said : "smtp://");
    if (!s->port)
      s->port = s->tls == SP_APP_TLS_IMPLICIT ? 465 : 25;
    break;
  case SP_APP_SYMFONY:
    s->tls = symfony_tls(s, smtps, "smtps://", "smtp://");
    break;
  case SP_APP_LARAVEL: /* config/mail.php: MAIL_PORT defaults to 587 */
    if (!s->port && !s->scheme[0])
      s->port = 587;
    s->tls =
        symfony_tls(s, smtps, s->protocol[0] ? "MAIL_SCHEME=smtps" : "smtps://",
                    s->protocol[0] ? "MAIL_SCHEME=smtp"
                    : s->scheme[0] ? "smtp://"
                                   : "MAIL_SCHEME unset");
    if (s->enc_said[0])
      say(s, " (%s is ignored by Laravel 9+)", s->enc_said, NULL);
    break;
  case SP_APP_NODEMAILER:
    curl_like_tls(s, smtps, s->req_said,
                  s->ssl_said[0] ? s->ssl_said
                  : s->scheme[0] ? "smtp:// (secure=false)"
                                 : words[SP_APP_NODEMAILER].opport_said);
    if (!s->port)
      s->port = s->tls == SP_APP_TLS_IMPLICIT ? 465 : 587;
    break;
  case SP_APP_DJANGO:
    if (s->use_tls == 1 && s->use_ssl == 1)
      return snprintf(err, errlen,
                      "EMAIL_USE_TLS and EMAIL_USE_SSL are both True: Django "
                      "refuses that, set only one"),
             -1;
    if (smtps || s->use_ssl == 1) {
      s->tls = SP_APP_TLS_IMPLICIT;
      say(s, "%s", s->ssl_said[0] ? s->ssl_said : "EMAIL_USE_SSL=True", NULL);
    } else if (s->use_tls == 1 || strcmp(s->scheme, "smtp+tls") == 0) {
      s->tls = SP_APP_TLS_STARTTLS;
      say(s, "%s", s->tls_said[0] ? s->tls_said : "EMAIL_USE_TLS=True", NULL);
    } else {
      s->tls = SP_APP_TLS_PLAIN;
      say(s, "%s",
          s->tls_said[0] ? s->tls_said : words[SP_APP_DJANGO].plain_said, NULL);
    }
    if (!s->port)
      s->port = 25; /* Django's EMAIL_PORT default, whatever the TLS */
    break;
  case SP_APP_SPRING:
    if (smtps || s->use_ssl == 1) {
      s->tls = SP_APP_TLS_IMPLICIT;
      say(s, "%s", s->use_ssl == 1 ? s->ssl_said : "protocol=smtps", NULL);
    } else if (s->use_tls == 1) {
      s->tls =
          s->require_tls == 1 ? SP_APP_TLS_STARTTLS : SP_APP_TLS_OPPORTUNISTIC;
      say(s, "%s", s->require_tls == 1 ? s->req_said : s->tls_said, NULL);
    } else {
      s->tls = SP_APP_TLS_PLAIN;
      say(s, "%s",
          s->tls_said[0] ? s->tls_said : words[SP_APP_SPRING].plain_said, NULL);
    }
    if (!s->port)
      s->port = s->tls == SP_APP_TLS_IMPLICIT ? 465 : 25;
    break;
  default:
    return snprintf(err, errlen, "unknown framework"), -1;
  }
  if (!given)
    s->port_default = true;
  if (s->ignored[0]) {
    size_t n = strlen(s->said);
    snprintf(s->said + n, sizeof(s->said) - n, " (%s ignores %s)",
             words[s->framework].title, s->ignored);
  }
  return 0;
}

/* The probe's TLS mode for the settings. */
enum sp_tls_mode sp_app_probe_mode(const struct sp_app_settings *s) {
  return s->tls == SP_APP_TLS_IMPLICIT ? SP_TLS_IMPLICIT : SP_TLS_STARTTLS;
}

/* What the server speaks, read from a probe made in the settings' mode. */
static enum sp_tls_mode server_mode(const struct sp_app_settings *s,
                                    const struct sp_result *r, bool *known) {
  *known = true;
  if (r->tls)
    return r->implicit_tls ? SP_TLS_IMPLICIT : SP_TLS_STARTTLS;
  if (r->code == SP_TLS_MODE_MISMATCH) /* the probe's mode was wrong */
    return sp_app_probe_mode(s) == SP_TLS_IMPLICIT ? SP_TLS_STARTTLS
                                                   : SP_TLS_IMPLICIT;
  if (r->code == SP_STARTTLS_UNAVAILABLE)
    return SP_TLS_NONE;
  *known = false;
  return SP_TLS_AUTO;
}

/* The other submission port to name in a fix. */
static unsigned other_port(enum sp_tls_mode want_server) {
  return want_server == SP_TLS_IMPLICIT ? 587u : 465u;
}

/* Compare the settings with the probe (see smtp_probe.h). */
void sp_app_verdict(const struct sp_app_settings *s, const struct sp_result *r,
                    struct sp_app_verdict *out) {
  memset(out, 0, sizeof(*out));
  const struct app_words *w = &words[s->framework];
  unsigned port = r->port;
  bool known;
  enum sp_tls_mode srv = server_mode(s, r, &known);
  out->known = known;
  out->server = srv;
  char tail[SP_MAX_TEXT] = "";
  if (r->code != SP_OK && r->code != SP_TLS_MODE_MISMATCH &&
      r->code != SP_STARTTLS_UNAVAILABLE && r->detail[0])
    snprintf(tail, sizeof(tail), "; but %s", r->detail);
  const char *said = s->said;
  bool sym465 =
      (s->framework == SP_APP_SYMFONY || s->framework == SP_APP_LARAVEL) &&
      port == 465 && s->tls == SP_APP_TLS_IMPLICIT &&
      strcmp(s->scheme, "smtps") != 0 && strcmp(s->protocol, "smtps") != 0;
  if (!known) {
    snprintf(out->text, sizeof(out->text),
             "cannot tell whether %s fits port %u (%s)%s", said, port,
             sp_code_name(r->code), tail);
    return;
  }
  switch (s->tls) {
  case SP_APP_TLS_IMPLICIT:
    if (srv == SP_TLS_IMPLICIT) {
      out->fits = true;
      snprintf(out->text, sizeof(out->text),
               "%s (implicit TLS) fits port %u, which speaks implicit TLS%s",
               said, port, tail);
    } else if (sym465) {
      out->mismatch = true;
      snprintf(out->text, sizeof(out->text),
               "port 465 speaks plaintext SMTP here, but %s always uses "
               "implicit TLS on 465 (%s): use port 587 with STARTTLS",
               w->title, said);
    } else {
      out->mismatch = true;
      snprintf(out->text, sizeof(out->text),
               "port %u expects STARTTLS, but %s asks for implicit TLS: %s "
               "instead, or use port %u",
               port, said, w->to_starttls, other_port(SP_TLS_STARTTLS));
    }
    return;
  case SP_APP_TLS_STARTTLS:
  case SP_APP_TLS_OPPORTUNISTIC:
    if (srv == SP_TLS_IMPLICIT) {
      out->mismatch = true;
      snprintf(out->text, sizeof(out->text),
               "port %u expects implicit TLS, but %s asks for STARTTLS: %s "
               "instead, or use port %u",
               port, said, w->to_implicit, other_port(SP_TLS_IMPLICIT));
    } else if (srv == SP_TLS_STARTTLS) {
      out->fits = true;
      snprintf(out->text, sizeof(out->text),
               "%s (STARTTLS) fits port %u, which offers STARTTLS%s", said,
               port, tail);
    } else if (s->tls == SP_APP_TLS_STARTTLS) {
      snprintf(out->text, sizeof(out->text),
               "port %u offers no STARTTLS, but %s requires it: the server "
               "must offer STARTTLS, or use port 465 with %s",
               port, said, w->to_implicit + 4);
    } else {
      out->fits = true;
      snprintf(out->text, sizeof(out->text),
               "port %u offers no STARTTLS, so %s sends in plaintext: the "
               "server should offer STARTTLS",
               port, said);
    }
    return;
  case SP_APP_TLS_PLAIN:
    if (srv == SP_TLS_IMPLICIT) {
      out->mismatch = true;
      snprintf(out->text, sizeof(out->text),
               "port %u expects implicit TLS, but %s sends plaintext: %s "
               "instead, or use port 587",
               port, said, w->to_implicit);
    } else if (srv == SP_TLS_STARTTLS) {
      char fix[96];
      if (s->ignore_tls == 1 && s->ign_said[0]) /* the switch that says so */
        snprintf(fix, sizeof(fix), "drop %s", s->ign_said);
      else
        snprintf(fix, sizeof(fix), "%s", w->to_starttls);
      out->mismatch = true;
      snprintf(out->text, sizeof(out->text),
               "port %u expects STARTTLS, but %s sends plaintext: %s", port,
               said, fix);
    } else {
      out->fits = true;
      snprintf(out->text, sizeof(out->text),
               "%s (plaintext) fits port %u, which offers no STARTTLS: mail "
               "goes unencrypted",
               said, port);
    }
    return;
  }
}

/* Apply a verdict to its result (see smtp_probe.h). */
void sp_app_apply(const struct sp_app_verdict *v, struct sp_result *res) {
  if (v->mismatch) {
    res->code = SP_TLS_MODE_MISMATCH;
    res->state = sp_code_state(SP_TLS_MODE_MISMATCH, res->role);
    sp_code_set_add(&res->findings, SP_TLS_MODE_MISMATCH);
    res->hint[0] = '\0';
  }
  if (res->code != SP_OK)
    snprintf(res->detail, sizeof(res->detail), "%s", v->text);
}
