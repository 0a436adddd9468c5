/*
 * fuzz_app.c - fuzz the app-settings parser (common/app_settings.c): URLs
 * as Symfony Mailer, Laravel and nodemailer write them and the frameworks'
 * KEY=VALUE settings, then the verdict against made-up probe results.
 *
 * Input: byte 0 = framework (mod 6) in bits 0-2, bit 3 = the lines come
 * from a file (else the command line), bits 4-7 = the made-up result's
 * code; the rest is lines of settings (each cut at 1 KiB). A marker
 * password line is added for the framework. Checks: a refusal leaves a
 * one-line message; the marker password is refused from argv and is in
 * no message, "said" text, host, user or verdict; resolved settings have
 * a port 1-65535 and a known mode; verdicts are terminated, one line and
 * a mismatch ends as tls_mode_mismatch.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "smtp_probe.h"

/* The marker password: it must never show in any text. */
#define MARK "FzSecret9q"

/* The input itself holds MARK (then it may be shown as what it is). */
static bool input_has_mark;

/* Whether a text is terminated within n bytes, one line, without MARK. */
static void clean(const char *t, size_t n, const char *what) {
  FUZZ_ASSERT(strnlen(t, n) < n, what);
  FUZZ_ASSERT(strchr(t, '\n') == NULL, "one line");
  FUZZ_ASSERT(input_has_mark || strstr(t, MARK) == NULL,
              "the password is never shown");
}

/* The framework's password key (its marker line). */
static const char *secret_line(enum sp_app_framework fw) {
  static const char *const lines[SP_APP_FRAMEWORK_COUNT] = {
      "password=" MARK,
      "smtp://u:" MARK "@h",
      "MAIL_PASSWORD=" MARK,
      "auth.pass=" MARK,
      "EMAIL_HOST_PASSWORD=" MARK,
      "spring.mail.password=" MARK};
  return lines[fw];
}

/* libFuzzer entry point: framework/source/code byte, then lines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  input_has_mark = memmem(data, size, MARK, strlen(MARK)) != NULL;
  enum sp_app_framework fw = (enum sp_app_framework)((data[0] & 7) % 6);
  enum sp_app_source src = (data[0] & 8) ? SP_APP_FROM_FILE : SP_APP_FROM_ARGV;
  struct sp_app_settings s;
  sp_app_init(&s, fw);
  char err[300], line[1025];
  err[0] = '\0';
  int rc = sp_app_set_line(&s, secret_line(fw), src, err, sizeof(err));
  if (src == SP_APP_FROM_ARGV)
    FUZZ_ASSERT(rc == -1 && err[0], "a password is refused from argv");
  clean(err, sizeof(err), "error terminated");
  size_t i = 1;
  while (i < size) {
    size_t n = 0;
    while (i + n < size && data[i + n] != '\n' && n < sizeof(line) - 1)
      n++;
    memcpy(line, data + i, n);
    line[n] = '\0';
    i += n + 1;
    if (strlen(line) != n)
      continue; /* a NUL: files refuse it before */
    err[0] = '\0';
    if (sp_app_set_line(&s, line, src, err, sizeof(err)) != 0) {
      FUZZ_ASSERT(err[0] != '\0', "a refusal says why");
      clean(err, sizeof(err), "error terminated");
    }
  }
  err[0] = '\0';
  if (sp_app_finish(&s, err, sizeof(err)) != 0) {
    FUZZ_ASSERT(err[0] != '\0', "a refusal says why");
    clean(err, sizeof(err), "error terminated");
    sp_app_wipe(&s);
    return 0;
  }
  FUZZ_ASSERT(s.port >= 1, "a port");
  FUZZ_ASSERT(s.tls <= SP_APP_TLS_IMPLICIT, "a known mode");
  clean(s.said, sizeof(s.said), "said terminated");
  clean(s.host, sizeof(s.host), "host terminated");
  clean(s.user, sizeof(s.user), "user terminated");
  enum sp_tls_mode m = sp_app_probe_mode(&s);
  FUZZ_ASSERT(m == SP_TLS_IMPLICIT || m == SP_TLS_STARTTLS, "probe mode");
  struct sp_result r;
  memset(&r, 0, sizeof(r));
  r.port = s.port;
  r.role = sp_role_for_port(s.port);
  r.code = (enum sp_code)((data[0] >> 4) % SP_CODE_COUNT);
  r.tls = (data[0] & 0x10) != 0;
  r.implicit_tls = r.tls && (data[0] & 0x20);
  r.state = sp_code_state(r.code, r.role);
  snprintf(r.detail, sizeof(r.detail), "detail");
  struct sp_app_verdict v;
  sp_app_verdict(&s, &r, &v);
  clean(v.text, sizeof(v.text), "verdict terminated");
  FUZZ_ASSERT(v.text[0] != '\0', "a verdict");
  FUZZ_ASSERT(!(v.fits && v.mismatch), "fits or not");
  sp_app_apply(&v, &r);
  if (v.mismatch)
    FUZZ_ASSERT(r.code == SP_TLS_MODE_MISMATCH, "a mismatch is one");
  clean(r.detail, sizeof(r.detail), "detail terminated");
  sp_app_wipe(&s);
  FUZZ_ASSERT(!s.has_secret && s.secret[0] == '\0', "wiped");
  return 0;
}
