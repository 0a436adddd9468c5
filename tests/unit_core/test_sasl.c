/* Unit tests: SASL encodings against known vectors (RFC 4616 shape,
 * RFC 2195's CRAM-MD5 example, the XOAUTH2 format), mechanism choice and
 * secret loading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "probe_internal.h"

/* PLAIN: base64 of NUL user NUL password. */
static void plain_vector(void **state) {
  (void)state;
  char out[128];
  assert_true(sp_sasl_plain("tim", "tanstaaftanstaaf", out, sizeof(out)) > 0);
  assert_string_equal(out, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
  assert_int_equal(sp_sasl_plain("tim", "tanstaaftanstaaf", out, 8), -1);
}

/* CRAM-MD5: the example of RFC 2195 section 2. */
static void cram_md5_vector(void **state) {
  (void)state;
  char out[128];
  const char *challenge =
      "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+";
  assert_true(sp_sasl_cram_md5("tim", "tanstaaftanstaaf", challenge, out,
                               sizeof(out)) > 0);
  assert_string_equal(out, "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
  assert_int_equal(
      sp_sasl_cram_md5("tim", "x", "not base64!", out, sizeof(out)), -1);
}

/* XOAUTH2: user=...^Aauth=Bearer ...^A^A. */
static void xoauth2_vector(void **state) {
  (void)state;
  char out[256];
  assert_true(sp_sasl_xoauth2("someuser@example.com",
                              "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
                              out, sizeof(out)) > 0);
  assert_string_equal(
      out, "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdD"
           "RxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==");
}

/* Base64 round trip, padding included. */
static void b64_roundtrip(void **state) {
  (void)state;
  char enc[32];
  unsigned char dec[32];
  assert_int_equal(sp_b64_encode("ab", 2, enc, sizeof(enc)), 4);
  assert_string_equal(enc, "YWI=");
  assert_int_equal(sp_b64_decode(enc, dec, sizeof(dec)), 2);
  assert_string_equal((char *)dec, "ab");
  assert_int_equal(sp_b64_decode("YWI", dec, sizeof(dec)), -1);
}

/* The strongest common mechanism, or the one asked for. */
static void pick_mechanism(void **state) {
  (void)state;
  assert_string_equal(sp_sasl_pick("PLAIN LOGIN CRAM-MD5", NULL), "CRAM-MD5");
  assert_string_equal(sp_sasl_pick("LOGIN PLAIN", NULL), "PLAIN");
  assert_string_equal(sp_sasl_pick("login", NULL), "LOGIN");
  assert_null(sp_sasl_pick("XOAUTH2 GSSAPI", NULL));
  assert_string_equal(sp_sasl_pick("PLAIN XOAUTH2", "xoauth2"), "XOAUTH2");
  assert_null(sp_sasl_pick("PLAIN", "CRAM-MD5"));
  assert_null(sp_sasl_pick("PLAIN", "DIGEST-MD5"));
}

/* Secrets: first line of a file, a warning for loose modes, env vars. */
static void secret_loading(void **state) {
  (void)state;
  char path[] = "/tmp/sp-secret-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "hunter2\nsecond line\n", 20), 20);
  close(fd);
  char buf[64], warn[256], err[256];
  assert_int_equal(chmod(path, 0600), 0);
  assert_int_equal(sp_secret_load(path, NULL, buf, sizeof(buf), warn,
                                  sizeof(warn), err, sizeof(err)),
                   0);
  assert_string_equal(buf, "hunter2");
  assert_string_equal(warn, "");
  assert_int_equal(chmod(path, 0644), 0);
  assert_int_equal(sp_secret_load(path, NULL, buf, sizeof(buf), warn,
                                  sizeof(warn), err, sizeof(err)),
                   0);
  assert_non_null(strstr(warn, "readable by group or others"));
  assert_null(strstr(warn, "hunter2"));
  unlink(path);
  assert_int_equal(sp_secret_load(path, NULL, buf, sizeof(buf), warn,
                                  sizeof(warn), err, sizeof(err)),
                   -1);
  assert_non_null(strstr(err, path));
  setenv("SP_TEST_SECRET", "tok3n", 1);
  assert_int_equal(sp_secret_load(NULL, "SP_TEST_SECRET", buf, sizeof(buf),
                                  warn, sizeof(warn), err, sizeof(err)),
                   0);
  assert_string_equal(buf, "tok3n");
  unsetenv("SP_TEST_SECRET");
  assert_int_equal(sp_secret_load(NULL, "SP_TEST_SECRET", buf, sizeof(buf),
                                  warn, sizeof(warn), err, sizeof(err)),
                   -1);
  assert_non_null(strstr(err, "SP_TEST_SECRET"));
}

/* Run this file's tests. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(plain_vector),   cmocka_unit_test(cram_md5_vector),
      cmocka_unit_test(xoauth2_vector), cmocka_unit_test(b64_roundtrip),
      cmocka_unit_test(pick_mechanism), cmocka_unit_test(secret_loading),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
