/*
 * test_webconfig.c - the web config (--web.config.file): TLS files, basic
 * auth users with bcrypt hashes checked through libcrypt, and bad inputs
 * with the line and key their errors name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "webconfig.h"

/* bcrypt (cost 5) of "s3cret-pw", made with mkpasswd -m bcrypt -R 4. */
#define HASH_S3CRET                                                            \
  "$2b$05$hbjpQlwMkLwhHciLk3ND2ufyNwoLIauHCX39DndgMTsTRFIN6d4TW"

/* Parse text as "w.yml" into wc; returns the parser's result. */
static int parse(const char *text, struct web_config *wc, char *err,
                 size_t errlen) {
  err[0] = '\0';
  return webconfig_parse(text, strlen(text), "w.yml", wc, err, errlen);
}

/* Write text to a fresh temporary file with a mode; malloc'd path. */
static char *temp_file(const char *text, mode_t mode) {
  char *path = strdup("/tmp/smtp-exporter-web.XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  assert_int_equal(chmod(path, mode), 0);
  return path;
}

/* Users with bcrypt hashes: the right password passes, others do not. */
static void test_basic_auth(void **state) {
  (void)state;
  char err[512];
  struct web_config wc;
  const char *yml = "basic_auth_users:\n"
                    "  prometheus: " HASH_S3CRET "\n"
                    "  other: '$2y$05$hbjpQlwMkLwhHciLk3ND2ufyNwoLIauHCX39D"
                    "ndgMTsTRFIN6d4TW'\n";
  if (parse(yml, &wc, err, sizeof(err)) < 0)
    fail_msg("%s", err);
  assert_int_equal(wc.nusers, 2);
  assert_false(wc.tls);
  assert_true(webconfig_check_user(&wc, "prometheus", "s3cret-pw"));
  assert_true(webconfig_check_user(&wc, "other", "s3cret-pw"));
  assert_false(webconfig_check_user(&wc, "prometheus", "s3cret-pW"));
  assert_false(webconfig_check_user(&wc, "prometheus", ""));
  assert_false(webconfig_check_user(&wc, "nobody", "s3cret-pw"));
  assert_false(webconfig_check_user(&wc, "", "s3cret-pw"));
  webconfig_free(&wc);
  /* an empty file: neither TLS nor auth, as in Prometheus */
  assert_int_equal(parse("", &wc, err, sizeof(err)), 0);
  assert_int_equal(wc.nusers, 0);
  webconfig_free(&wc);
}

/* The bcrypt shape check. */
static void test_hash_shape(void **state) {
  (void)state;
  assert_true(webconfig_bcrypt_hash(HASH_S3CRET));
  assert_false(webconfig_bcrypt_hash("$1$abc$defghijklmnopqrstuvwx"));
  assert_false(webconfig_bcrypt_hash("plaintext-password"));
  assert_false(webconfig_bcrypt_hash(
      "$2b$03$s7qTZ0Sp8sSgiYzx1P/3seVtW3VTiHgGI5Zz0xr4Aw2nK9dU5Hpnm"));
  assert_false(webconfig_bcrypt_hash(
      "$2b$04$s7qTZ0Sp8sSgiYzx1P/3seVtW3VTiHgGI5Zz0xr4Aw2nK9dU5Hpn!"));
  assert_false(webconfig_bcrypt_hash(
      "$2x$04$s7qTZ0Sp8sSgiYzx1P/3seVtW3VTiHgGI5Zz0xr4Aw2nK9dU5Hpnm"));
}

/* TLS files are read at load; missing, unreadable or wrong files are
 * errors naming the key and the file. */
static void test_tls_files(void **state) {
  (void)state;
  char *cert = temp_file("-----BEGIN CERTIFICATE-----\nMIIB\n-----END "
                         "CERTIFICATE-----\n",
                         0644);
  char *key = temp_file("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE "
                        "KEY-----\n",
                        0600);
  char *enc = temp_file("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIE\n-----"
                        "END ENCRYPTED PRIVATE KEY-----\n",
                        0600);
  char *open_key = temp_file("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END "
                             "PRIVATE KEY-----\n",
                             0644);
  char yml[1024];
  char err[512];
  struct web_config wc;
  snprintf(yml, sizeof(yml),
           "tls_server_config:\n  cert_file: %s\n  key_file: %s\n", cert, key);
  if (parse(yml, &wc, err, sizeof(err)) < 0)
    fail_msg("%s", err);
  assert_true(wc.tls);
  assert_non_null(strstr(wc.cert_pem, "BEGIN CERTIFICATE"));
  assert_non_null(strstr(wc.key_pem, "PRIVATE KEY"));
  assert_string_equal(wc.warning, "");
  webconfig_free(&wc);
  assert_null(wc.key_pem);

  snprintf(yml, sizeof(yml),
           "tls_server_config:\n  cert_file: %s\n  key_file: %s\n", cert,
           open_key);
  assert_int_equal(parse(yml, &wc, err, sizeof(err)), 0);
  assert_non_null(strstr(wc.warning, "readable by group or others"));
  webconfig_free(&wc);

  static const struct {
    const char *fmt;   /* the file, %s = cert, %s = key */
    const char *where; /* expected message prefix */
    const char *what;  /* expected words */
  } cases[] = {
      {"tls_server_config:\n  cert_file: /nonexistent/c.pem\n  key_file: "
       "%2$s\n",
       "w.yml:2:14:", "cert_file /nonexistent/c.pem: No such file"},
      {"tls_server_config:\n  cert_file: %1$s\n  key_file: /nonexistent/k\n",
       "w.yml:3:13:", "key_file /nonexistent/k: No such file"},
      {"tls_server_config:\n  cert_file: /\n  key_file: %2$s\n",
       "w.yml:2:14:", "not a regular file"},
      {"tls_server_config:\n  cert_file: %2$s\n  key_file: %2$s\n",
       "w.yml:2:14:", "no PEM certificate"},
      {"tls_server_config:\n  cert_file: %1$s\n  key_file: %1$s\n",
       "w.yml:3:13:", "no PEM private key"},
      {"tls_server_config:\n  cert_file: %1$s\n  key_file: %3$s\n",
       "w.yml:3:13:", "encrypted keys are not supported"},
      {"tls_server_config:\n  cert_file: %1$s\n",
       "w.yml:2:3:", "needs both cert_file and key_file"},
      {"tls_server_config:\n  cert_file: %1$s\n  key_file: %2$s\n  "
       "client_auth_type: RequireAndVerifyClientCert\n",
       "w.yml:4:3:", "tls_server_config.client_auth_type is not supported"},
      {"tls_server_config:\n  cert_file: [%1$s]\n  key_file: %2$s\n",
       "w.yml:2:14:", "cert_file must be a single value"},
      {"tls_server_config: yes\n", "w.yml:1:20:", "must be a mapping"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(yml, sizeof(yml), cases[i].fmt, cert, key, enc);
#pragma GCC diagnostic pop
    if (parse(yml, &wc, err, sizeof(err)) == 0) {
      webconfig_free(&wc);
      fail_msg("case %zu accepted:\n%s", i, yml);
    }
    if (strncmp(err, cases[i].where, strlen(cases[i].where)) != 0 ||
        strstr(err, cases[i].what) == NULL)
      fail_msg("case %zu: got \"%s\", want \"%s\" and \"%s\"", i, err,
               cases[i].where, cases[i].what);
  }
  unlink(cert);
  unlink(key);
  unlink(enc);
  unlink(open_key);
  free(cert);
  free(key);
  free(enc);
  free(open_key);
}

/* Bad users, hashes and keys are refused with line and reason. */
static void test_bad_inputs(void **state) {
  (void)state;
  static const struct {
    const char *yml;   /* the file */
    const char *where; /* expected message prefix */
    const char *what;  /* expected words */
  } cases[] = {
      {"basic_auth_users:\n  u: plaintext\n", "w.yml:2:6:", "not a bcrypt"},
      {"basic_auth_users:\n  u: $1$x$abcdefghijklmnopqrstuv\n",
       "w.yml:2:6:", "not a bcrypt"},
      {"basic_auth_users:\n  u: " HASH_S3CRET "\n  u: " HASH_S3CRET "\n",
       "w.yml:3:3:", "listed twice"},
      {"basic_auth_users:\n  \"a:b\": " HASH_S3CRET "\n", "w.yml:2:3:", "':'"},
      {"basic_auth_users:\n  u: [x]\n", "w.yml:2:6:", "single value"},
      {"basic_auth_users: {}\n", "w.yml:1:19:", "at least one user"},
      {"basic_auth_users: x\n", "w.yml:1:19:", "at least one user"},
      {"http_server_config:\n  http2: false\n",
       "w.yml:1:1:", "http_server_config is not supported"},
      {"basic_auth_users:\n  u: " HASH_S3CRET
       "\nbasic_auth_users:\n  v: " HASH_S3CRET "\n",
       "w.yml:3:1:", "repeated"},
      {"- a\n", "w.yml:1:1:", "must be a mapping"},
      {"basic_auth_users:\n  u: [\n", "w.yml:", "YAML error"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char err[512];
    struct web_config wc;
    if (parse(cases[i].yml, &wc, err, sizeof(err)) == 0) {
      webconfig_free(&wc);
      fail_msg("case %zu accepted:\n%s", i, cases[i].yml);
    }
    if (strncmp(err, cases[i].where, strlen(cases[i].where)) != 0 ||
        strstr(err, cases[i].what) == NULL)
      fail_msg("case %zu: got \"%s\", want \"%s\" and \"%s\"", i, err,
               cases[i].where, cases[i].what);
  }
  char err[512];
  struct web_config wc;
  assert_int_equal(
      webconfig_load("/nonexistent/web.yml", &wc, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "/nonexistent/web.yml"));
}

/* Run the web config tests. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basic_auth),
      cmocka_unit_test(test_hash_shape),
      cmocka_unit_test(test_tls_files),
      cmocka_unit_test(test_bad_inputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
