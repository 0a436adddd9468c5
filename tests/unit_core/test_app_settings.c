/* Unit tests: the app-settings check (common/app_settings.c). One table:
 * for each framework a good setting and each wrong pairing with the
 * server, the port and TLS mode the settings resolve to, the code after
 * the verdict and the exact advice. Then the secrets, the file format and
 * bad input. No network: the probe's result is fabricated the way the
 * probe reports each server against each probe mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp_probe.h"

/* What the server on the port speaks. */
enum server { S_IMPLICIT, S_STARTTLS, S_PLAIN };

/* One row: settings, the server, and what must come out. */
struct row {
  const char *fw;       /* --app-framework */
  const char *lines[5]; /* the settings (URL or KEY=VALUE), NULL-ended */
  enum server server;   /* what the server speaks */
  unsigned port;        /* the port the settings resolve to */
  const char *mode;     /* sp_app_tls_name of the resolved mode */
  const char *code;     /* the result's code after sp_app_apply */
  const char *advice;   /* the verdict, exactly */
};

/* The table. */
static const struct row rows[] = {
    {"generic",
     {"smtp://h:587"},
     S_STARTTLS,
     587,
     "starttls-if-offered",
     "ok",
     "smtp:// (STARTTLS) fits port 587, which offers STARTTLS"},
    {"generic",
     {"smtp://h:465"},
     S_IMPLICIT,
     465,
     "starttls-if-offered",
     "tls_mode_mismatch",
     "port 465 expects implicit TLS, but smtp:// asks for STARTTLS: use "
     "smtps:// instead, or use port 587"},
    {"generic",
     {"smtps://h:465"},
     S_IMPLICIT,
     465,
     "implicit",
     "ok",
     "smtps:// (implicit TLS) fits port 465, which speaks implicit TLS"},
    {"generic",
     {"smtps://h:587"},
     S_STARTTLS,
     587,
     "implicit",
     "tls_mode_mismatch",
     "port 587 expects STARTTLS, but smtps:// asks for implicit TLS: use "
     "smtp:// with STARTTLS instead, or use port 465"},
    {"generic",
     {"smtp://h:587?starttls=false"},
     S_STARTTLS,
     587,
     "plaintext",
     "tls_mode_mismatch",
     "port 587 expects STARTTLS, but starttls=false sends plaintext: drop "
     "starttls=false"},
    {"generic",
     {"smtp://h:587?starttls=true"},
     S_PLAIN,
     587,
     "starttls",
     "starttls_unavailable",
     "port 587 offers no STARTTLS, but starttls=true requires it: the server "
     "must offer STARTTLS, or use port 465 with smtps://"},
    {"generic",
     {"smtp://h:465?encryption=tls"},
     S_IMPLICIT,
     465,
     "starttls",
     "tls_mode_mismatch",
     "port 465 expects implicit TLS, but encryption=tls asks for STARTTLS: use "
     "smtps:// instead, or use port 587"},
    {"symfony",
     {"smtp://h:465"},
     S_IMPLICIT,
     465,
     "implicit",
     "ok",
     "smtp:// on port 465 (implicit TLS) fits port 465, which speaks implicit "
     "TLS"},
    {"symfony",
     {"smtp://h"},
     S_IMPLICIT,
     465,
     "implicit",
     "ok",
     "smtp:// without a port (465) (implicit TLS) fits port 465, which speaks "
     "implicit TLS"},
    {"symfony",
     {"smtp://h:587"},
     S_STARTTLS,
     587,
     "starttls-if-offered",
     "ok",
     "smtp:// (STARTTLS) fits port 587, which offers STARTTLS"},
    {"symfony",
     {"smtp://h:2525"},
     S_IMPLICIT,
     2525,
     "starttls-if-offered",
     "tls_mode_mismatch",
     "port 2525 expects implicit TLS, but smtp:// asks for STARTTLS: use "
     "smtps:// instead, or use port 587"},
    {"symfony",
     {"smtps://h:587"},
     S_STARTTLS,
     587,
     "implicit",
     "tls_mode_mismatch",
     "port 587 expects STARTTLS, but smtps:// asks for implicit TLS: use "
     "smtp:// instead, or use port 465"},
    {"symfony",
     {"smtp://h:465"},
     S_STARTTLS,
     465,
     "implicit",
     "tls_mode_mismatch",
     "port 465 speaks plaintext SMTP here, but Symfony Mailer always uses "
     "implicit TLS on 465 (smtp:// on port 465): use port 587 with STARTTLS"},
    {"symfony",
     {"smtp://h:587?auto_tls=false"},
     S_STARTTLS,
     587,
     "plaintext",
     "tls_mode_mismatch",
     "port 587 expects STARTTLS, but auto_tls=false sends plaintext: drop "
     "auto_tls=false"},
    {"symfony",
     {"smtp://h:465?encryption=tls"},
     S_IMPLICIT,
     465,
     "implicit",
     "ok",
     "smtp:// on port 465 (Symfony Mailer ignores encryption=tls) (implicit "
     "TLS) fits port 465, which speaks implicit TLS"},
    {"laravel",
     {"MAIL_HOST=h", "MAIL_PORT=587", "MAIL_ENCRYPTION=tls"},
     S_STARTTLS,
     587,
     "starttls-if-offered",
     "ok",
     "MAIL_SCHEME unset (MAIL_ENCRYPTION=tls is ignored by Laravel 9+) "
     "(STARTTLS) fits port 587, which offers STARTTLS"},
    {"laravel",
     {"MAIL_HOST=h", "MAIL_PORT=465", "MAIL_ENCRYPTION=tls"},
     S_IMPLICIT,
     465,
     "implicit",
     "ok",
     "MAIL_SCHEME unset on port 465 (MAIL_ENCRYPTION=tls is ignored by Laravel "
     "9+) (implicit TLS) fits port 465, which speaks implicit TLS"},
    {"laravel",
     {"MAIL_HOST=h", "MAIL_PORT=587", "MAIL_SCHEME=smtps"},
     S_STARTTLS,
     587,
     "implicit",
     "tls_mode_mismatch",
     "port 587 expects STARTTLS, but MAIL_SCHEME=smtps asks for implicit TLS: "
     "set MAIL_SCHEME=smtp instead, or use port 465"},
    {"laravel",
     {"MAIL_HOST=h", "MAIL_PORT=2525"},
     S_IMPLICIT,
     2525,
     "starttls-if-offered",
     "tls_mode_mismatch",
     "port 2525 expects implicit TLS, but MAIL_SCHEME unset asks for STARTTLS: "
     "set MAIL_SCHEME=smtps instead, or use port 587"},
    {"laravel",
     {"MAIL_HOST=h", "MAIL_PORT=587", "MAIL_ENCRYPTION=ssl"},
     S_STARTTLS,
     587,
     "starttls-if-offered",
     "ok",
     "MAIL_SCHEME unset (MAIL_ENCRYPTION=ssl is ignored by Laravel 9+) "
     "(STARTTLS) fits port 587, which offers STARTTLS"},
    {"nodemailer",
     {"host=h", "port=465", "secure=true"},
     S_IMPLICIT,
     465,
     "implicit",
     "ok",
     "secure=true (implicit TLS) fits port 465, which speaks implicit TLS"},
    {"nodemailer",
     {"smtp://h:465"},
     S_IMPLICIT,
     465,
     "starttls-if-offered",
     "tls_mode_mismatch",
     "port 465 expects implicit TLS, but smtp:// (secure=false) asks for "
     "STARTTLS: set secure=true instead, or use port 587"},
    {"nodemailer",
     {"host=h", "port=587", "secure=true"},
     S_STARTTLS,
     587,
     "implicit",
     "tls_mode_mismatch",
     "port 587 expects STARTTLS, but secure=true asks for implicit TLS: set "
     "secure=false instead, or use port 465"},
    {"nodemailer",
     {"host=h", "port=587"},
     S_STARTTLS,
     587,
     "starttls-if-offered",
     "ok",
     "secure=false (the default) (STARTTLS) fits port 587, which offers "
     "STARTTLS"},
    {"nodemailer",
     {"host=h", "port=587", "ignoreTLS=true"},
     S_STARTTLS,
     587,
     "plaintext",
     "tls_mode_mismatch",
     "port 587 expects STARTTLS, but ignoreTLS=true sends plaintext: drop "
     "ignoreTLS=true"},
    {"nodemailer",
     {"host=h", "port=587", "requireTLS=true"},
     S_PLAIN,
     587,
     "starttls",
     "starttls_unavailable",
     "port 587 offers no STARTTLS, but requireTLS=true requires it: the server "
     "must offer STARTTLS, or use port 465 with secure=true"},
    {"django",
     {"EMAIL_HOST=h", "EMAIL_PORT=587", "EMAIL_USE_TLS=True"},
     S_STARTTLS,
     587,
     "starttls",
     "ok",
     "EMAIL_USE_TLS=True (STARTTLS) fits port 587, which offers STARTTLS"},
    {"django",
     {"EMAIL_HOST=h", "EMAIL_PORT=465", "EMAIL_USE_TLS=True"},
     S_IMPLICIT,
     465,
     "starttls",
     "tls_mode_mismatch",
     "port 465 expects implicit TLS, but EMAIL_USE_TLS=True asks for STARTTLS: "
     "set EMAIL_USE_SSL=True instead, or use port 587"},
    {"django",
     {"EMAIL_HOST=h", "EMAIL_PORT=587", "EMAIL_USE_SSL=True"},
     S_STARTTLS,
     587,
     "implicit",
     "tls_mode_mismatch",
     "port 587 expects STARTTLS, but EMAIL_USE_SSL=True asks for implicit TLS: "
     "set EMAIL_USE_TLS=True instead, or use port 465"},
    {"django",
     {"EMAIL_HOST=h", "EMAIL_PORT=587"},
     S_STARTTLS,
     587,
     "plaintext",
     "tls_mode_mismatch",
     "port 587 expects STARTTLS, but EMAIL_USE_TLS=False (the default) sends "
     "plaintext: set EMAIL_USE_TLS=True"},
    {"django",
     {"EMAIL_HOST=h", "EMAIL_PORT=465"},
     S_IMPLICIT,
     465,
     "plaintext",
     "tls_mode_mismatch",
     "port 465 expects implicit TLS, but EMAIL_USE_TLS=False (the default) "
     "sends plaintext: set EMAIL_USE_SSL=True instead, or use port 587"},
    {"django",
     {"EMAIL_HOST=h", "EMAIL_PORT=465", "EMAIL_USE_SSL=True"},
     S_IMPLICIT,
     465,
     "implicit",
     "ok",
     "EMAIL_USE_SSL=True (implicit TLS) fits port 465, which speaks implicit "
     "TLS"},
    {"django",
     {"EMAIL_HOST=h", "EMAIL_PORT=25"},
     S_PLAIN,
     25,
     "plaintext",
     "starttls_unavailable",
     "EMAIL_USE_TLS=False (the default) (plaintext) fits port 25, which offers "
     "no STARTTLS: mail goes unencrypted"},
    {"spring",
     {"spring.mail.host=h", "spring.mail.port=587",
      "spring.mail.properties.mail.smtp.starttls.enable=true"},
     S_STARTTLS,
     587,
     "starttls-if-offered",
     "ok",
     "spring.mail.properties.mail.smtp.starttls.enable=true (STARTTLS) fits "
     "port 587, which offers STARTTLS"},
    {"spring",
     {"spring.mail.host=h", "spring.mail.port=465",
      "mail.smtp.starttls.enable=true"},
     S_IMPLICIT,
     465,
     "starttls-if-offered",
     "tls_mode_mismatch",
     "port 465 expects implicit TLS, but mail.smtp.starttls.enable=true asks "
     "for STARTTLS: set mail.smtp.ssl.enable=true instead, or use port 587"},
    {"spring",
     {"spring.mail.host=h", "spring.mail.port=587",
      "mail.smtp.ssl.enable=true"},
     S_STARTTLS,
     587,
     "implicit",
     "tls_mode_mismatch",
     "port 587 expects STARTTLS, but mail.smtp.ssl.enable=true asks for "
     "implicit TLS: set mail.smtp.starttls.enable=true instead, or use port "
     "465"},
    {"spring",
     {"spring.mail.host=h", "spring.mail.port=587"},
     S_STARTTLS,
     587,
     "plaintext",
     "tls_mode_mismatch",
     "port 587 expects STARTTLS, but mail.smtp.starttls.enable=false (the "
     "default) sends plaintext: set mail.smtp.starttls.enable=true"},
    {"spring",
     {"spring.mail.host=h", "spring.mail.port=465",
      "mail.smtp.ssl.enable=true"},
     S_IMPLICIT,
     465,
     "implicit",
     "ok",
     "mail.smtp.ssl.enable=true (implicit TLS) fits port 465, which speaks "
     "implicit TLS"},
    {"spring",
     {"spring.mail.host=h", "spring.mail.port=587",
      "mail.smtp.starttls.enable=true", "mail.smtp.starttls.required=true"},
     S_PLAIN,
     587,
     "starttls",
     "starttls_unavailable",
     "port 587 offers no STARTTLS, but mail.smtp.starttls.required=true "
     "requires it: the server must offer STARTTLS, or use port 465 with "
     "mail.smtp.ssl.enable=true"},
};

/* Fill r as the probe reports a server s probed in mode m. */
static void fake(struct sp_result *r, uint16_t port, enum server s,
                 enum sp_tls_mode m) {
  memset(r, 0, sizeof(*r));
  r->port = port;
  r->role = sp_role_for_port(port);
  if (s == S_IMPLICIT && m == SP_TLS_IMPLICIT)
    r->code = SP_OK, r->tls = r->implicit_tls = true;
  else if (s == S_STARTTLS && m == SP_TLS_STARTTLS)
    r->code = SP_OK, r->tls = true;
  else if (s == S_PLAIN && m == SP_TLS_STARTTLS)
    r->code = SP_STARTTLS_UNAVAILABLE;
  else
    r->code = SP_TLS_MODE_MISMATCH;
  r->state = sp_code_state(r->code, r->role);
}

/* Parse a row's settings as from the command line; fails on an error. */
static void parse(struct sp_app_settings *s, const char *fw,
                  const char *const *lines) {
  char err[300];
  int f = sp_app_framework_from_name(fw);
  assert_true(f >= 0);
  sp_app_init(s, (enum sp_app_framework)f);
  for (int i = 0; lines[i]; i++)
    if (sp_app_set_line(s, lines[i], SP_APP_FROM_ARGV, err, sizeof(err)))
      fail_msg("%s %s: %s", fw, lines[i], err);
  if (sp_app_finish(s, err, sizeof(err)))
    fail_msg("%s: %s", fw, err);
}

/* Every row: port, mode, code and the exact advice. */
static void table(void **state) {
  (void)state;
  int fits[SP_APP_FRAMEWORK_COUNT] = {0}, wrong[SP_APP_FRAMEWORK_COUNT] = {0};
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    const struct row *w = &rows[i];
    struct sp_app_settings s;
    parse(&s, w->fw, w->lines);
    if (s.port != w->port || strcmp(sp_app_tls_name(s.tls), w->mode) != 0)
      fail_msg("row %zu (%s %s): port %u mode %s, want %u %s", i, w->fw,
               w->lines[0], s.port, sp_app_tls_name(s.tls), w->port, w->mode);
    struct sp_result r;
    fake(&r, s.port, w->server, sp_app_probe_mode(&s));
    struct sp_app_verdict v;
    sp_app_verdict(&s, &r, &v);
    sp_app_apply(&v, &r);
    if (strcmp(sp_code_name(r.code), w->code) != 0)
      fail_msg("row %zu (%s %s): code %s, want %s", i, w->fw, w->lines[0],
               sp_code_name(r.code), w->code);
    if (strcmp(v.text, w->advice) != 0)
      fail_msg("row %zu (%s %s):\n  got  \"%s\"\n  want \"%s\"", i, w->fw,
               w->lines[0], v.text, w->advice);
    if (r.code != SP_OK)
      assert_string_equal(r.detail, w->advice);
    (v.mismatch ? wrong : fits)[s.framework]++;
  }
  for (int f = 0; f < SP_APP_FRAMEWORK_COUNT; f++) /* each: good and wrong */
    if (fits[f] == 0 || wrong[f] < 2)
      fail_msg("%s: %d good and %d wrong rows", sp_app_framework_name(f),
               fits[f], wrong[f]);
}

/* The brief's example, word for word. */
static void django_example(void **state) {
  (void)state;
  const char *lines[] = {"EMAIL_HOST=mail.example.org", "EMAIL_PORT=465",
                         "EMAIL_USE_TLS=True", NULL};
  struct sp_app_settings s;
  parse(&s, "django", lines);
  struct sp_result r;
  fake(&r, s.port, S_IMPLICIT, sp_app_probe_mode(&s));
  struct sp_app_verdict v;
  sp_app_verdict(&s, &r, &v);
  assert_string_equal(v.text,
                      "port 465 expects implicit TLS, but EMAIL_USE_TLS=True "
                      "asks for STARTTLS: set EMAIL_USE_SSL=True instead, or "
                      "use port 587");
  assert_string_equal(s.host, "mail.example.org");
}

/* The same URL in different frameworks: Symfony's smtp://host:465 is
 * implicit TLS, nodemailer's is not; generic reads it as curl. */
static void same_url_differs(void **state) {
  (void)state;
  const char *url[] = {"smtp://user@mail.example.org:465", NULL};
  struct sp_app_settings s;
  parse(&s, "symfony", url);
  assert_int_equal(s.tls, SP_APP_TLS_IMPLICIT);
  parse(&s, "laravel", url);
  assert_int_equal(s.tls, SP_APP_TLS_IMPLICIT);
  parse(&s, "nodemailer", url);
  assert_int_equal(s.tls, SP_APP_TLS_OPPORTUNISTIC);
  parse(&s, "generic", url);
  assert_int_equal(s.tls, SP_APP_TLS_OPPORTUNISTIC);
  assert_string_equal(s.user, "user");
  const char *secure[] = {"smtp://mail.example.org:465", "secure=true", NULL};
  parse(&s, "nodemailer", secure);
  assert_int_equal(s.tls, SP_APP_TLS_IMPLICIT);
  const char *v6[] = {"smtps://[2001:db8::1]", NULL};
  parse(&s, "generic", v6);
  assert_string_equal(s.host, "2001:db8::1");
  assert_int_equal(s.port, 465);
}

/* A password on the command line is refused and never echoed. */
static void argv_secrets_refused(void **state) {
  (void)state;
  static const struct {
    const char *fw, *line;
  } bad[] = {
      {"generic", "smtp://user:Hunter2pw@mail.example.org:587"},
      {"symfony", "MAILER_DSN=smtp://user:Hunter2pw@mail.example.org:587"},
      {"django", "EMAIL_HOST_PASSWORD=Hunter2pw"},
      {"laravel", "MAIL_PASSWORD=Hunter2pw"},
      {"nodemailer", "auth.pass=Hunter2pw"},
      {"spring", "spring.mail.password=Hunter2pw"},
      {"django", "DB_PASSWORD=Hunter2pw"},
      {"generic", "smtp://mail.example.org:587?password=Hunter2pw"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct sp_app_settings s;
    char err[300] = "";
    sp_app_init(&s,
                (enum sp_app_framework)sp_app_framework_from_name(bad[i].fw));
    assert_int_equal(
        sp_app_set_line(&s, bad[i].line, SP_APP_FROM_ARGV, err, sizeof(err)),
        -1);
    if (strstr(err, "Hunter2") || !strstr(err, "--auth-password-file") ||
        !strstr(err, "--app-settings-file"))
      fail_msg("%s: %s", bad[i].line, err);
    assert_false(s.has_secret);
  }
}

/* Write text to a new temporary file (mode 600); returns its name. */
static char *temp_file(const char *text) {
  static char name[64];
  snprintf(name, sizeof(name), "/tmp/sp-app-test.XXXXXX");
  int fd = mkstemp(name);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  return name;
}

/* A settings file: .env, settings.py and JS-ish lines; the password is
 * kept as the secret and is in no text. */
static void file_settings(void **state) {
  (void)state;
  char *f = temp_file("# Django settings\n"
                      "EMAIL_BACKEND = 'django.core.mail.backends.smtp."
                      "EmailBackend'\n"
                      "EMAIL_HOST = 'mail.example.org'\n"
                      "EMAIL_PORT = 587\n"
                      "EMAIL_HOST_USER = \"app@example.org\"\n"
                      "EMAIL_HOST_PASSWORD = 'Hunter2pw'\n"
                      "DB_PASSWORD=other-secret\n"
                      "export EMAIL_USE_TLS=True\n"
                      "DEBUG = False\n");
  struct sp_app_settings s;
  char err[300];
  sp_app_init(&s, SP_APP_DJANGO);
  if (sp_app_load_file(&s, f, err, sizeof(err)) != 0)
    fail_msg("%s", err);
  unlink(f);
  assert_int_equal(sp_app_finish(&s, err, sizeof(err)), 0);
  assert_string_equal(s.host, "mail.example.org");
  assert_int_equal(s.port, 587);
  assert_string_equal(s.user, "app@example.org");
  assert_true(s.has_secret);
  assert_string_equal(s.secret, "Hunter2pw");
  assert_int_equal(s.tls, SP_APP_TLS_STARTTLS);
  struct sp_result r;
  fake(&r, 587, S_IMPLICIT, sp_app_probe_mode(&s));
  struct sp_app_verdict v;
  sp_app_verdict(&s, &r, &v);
  sp_app_apply(&v, &r);
  assert_null(strstr(v.text, "Hunter2"));
  assert_null(strstr(s.said, "Hunter2"));
  assert_null(strstr(r.detail, "Hunter2"));
  sp_app_wipe(&s);
  assert_false(s.has_secret);
  assert_int_equal(s.secret[0], 0);

  f = temp_file("// nodemailer\nhost: \"mail.example.org\",\nport: 465,\n"
                "secure: true,\nsmtps://app@mail.example.org:465\n"
                "url=smtps://app:Hunter2pw@mail.example.org:465\n");
  sp_app_init(&s, SP_APP_NODEMAILER);
  if (sp_app_load_file(&s, f, err, sizeof(err)) != 0)
    fail_msg("%s", err);
  unlink(f);
  assert_int_equal(sp_app_finish(&s, err, sizeof(err)), 0);
  assert_int_equal(s.tls, SP_APP_TLS_IMPLICIT);
  assert_string_equal(s.secret, "Hunter2pw");
  assert_null(strstr(s.said, "Hunter2"));
  sp_app_wipe(&s);
}

/* Bad input: one sentence each, naming what is wrong. */
static void bad_input(void **state) {
  (void)state;
  static const struct {
    const char *fw, *line, *want;
  } bad[] = {
      {"generic", "ftp://mail.example.org", "not smtp or smtps"},
      {"generic", "mail.example.org:587", "is not a setting"},
      {"generic", "just-a-word", "KEY=VALUE"},
      {"generic", "smtp://mail.example.org:99999", "not a port"},
      {"generic", "smtp://[::1", "lacks its ']'"},
      {"generic", "smtp://", "no host name"},
      {"generic", "smtp://bad host:587", "not a host name"},
      {"django", "EMAIL_USE_TLS=maybe", "is not true or false"},
      {"django", "EMAIL_PORT=0", "not a port"},
      {"django", "secure=true",
       "is not a setting --app-framework django reads"},
      {"laravel", "MAIL_MAILER=log", "sends no SMTP"},
      {"laravel", "MAIL_SCHEME=http", "not smtp or smtps"},
      {"generic", "tls=sometimes", "not none, starttls"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct sp_app_settings s;
    char err[300] = "";
    sp_app_init(&s,
                (enum sp_app_framework)sp_app_framework_from_name(bad[i].fw));
    assert_int_equal(
        sp_app_set_line(&s, bad[i].line, SP_APP_FROM_ARGV, err, sizeof(err)),
        -1);
    if (!strstr(err, bad[i].want) || strchr(err, '\n'))
      fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].line, err, bad[i].want);
  }
  const char *both[] = {"EMAIL_HOST=h", "EMAIL_USE_TLS=True",
                        "EMAIL_USE_SSL=True", NULL};
  struct sp_app_settings s;
  char err[300];
  sp_app_init(&s, SP_APP_DJANGO);
  for (int i = 0; both[i]; i++)
    assert_int_equal(
        sp_app_set_line(&s, both[i], SP_APP_FROM_ARGV, err, sizeof(err)), 0);
  assert_int_equal(sp_app_finish(&s, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "both True"));
  assert_int_equal(sp_app_framework_from_name("rails"), -1);
}

/* A port that did not answer: no verdict on the mode, the code stays. */
static void unknown_server(void **state) {
  (void)state;
  const char *url[] = {"smtps://mail.example.org", NULL};
  struct sp_app_settings s;
  parse(&s, "generic", url);
  struct sp_result r;
  memset(&r, 0, sizeof(r));
  r.port = 465;
  r.role = SP_ROLE_IMPLICIT;
  r.code = SP_CONNECT_REFUSED;
  snprintf(r.detail, sizeof(r.detail), "connection refused");
  struct sp_app_verdict v;
  sp_app_verdict(&s, &r, &v);
  sp_app_apply(&v, &r);
  assert_false(v.known);
  assert_int_equal(r.code, SP_CONNECT_REFUSED);
  assert_string_equal(r.detail, "cannot tell whether smtps:// fits port 465 "
                                "(connect_refused); but connection refused");
}

/* Run the tests. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(table),
      cmocka_unit_test(django_example),
      cmocka_unit_test(same_url_differs),
      cmocka_unit_test(argv_secrets_refused),
      cmocka_unit_test(file_settings),
      cmocka_unit_test(bad_input),
      cmocka_unit_test(unknown_server),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
