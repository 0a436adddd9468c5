/* Unit tests: port policy parsing (bad inputs named by line) and the
 * check of fabricated results against it. */
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

/* Write text to a temporary file; the caller unlinks path. */
static void write_file(char *path, const char *text) {
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

/* Load text as a policy; on failure err holds the message. */
static struct sp_policy *load(const char *text, char *err, size_t errlen) {
  char path[] = "/tmp/sp-policy-XXXXXX";
  write_file(path, text);
  struct sp_policy *pol = sp_policy_load(path, err, errlen);
  unlink(path);
  return pol;
}

/* The example policy of the README loads and sets the request's ports. */
static const char *example = "ports:\n"
                             "  587:\n"
                             "    state: open\n"
                             "    tls: starttls\n"
                             "    auth: after_tls\n"
                             "    mechanisms: [PLAIN, LOGIN]\n"
                             "    min_tls: \"1.2\"\n"
                             "  465:\n"
                             "    tls: implicit\n"
                             "  25:\n"
                             "    auth: never\n"
                             "  2525:\n"
                             "    state: closed\n";

/* Ports and TLS modes go into the request. */
static void example_loads(void **state) {
  (void)state;
  char err[256] = "";
  struct sp_policy *pol = load(example, err, sizeof(err));
  assert_non_null(pol);
  struct sp_request req;
  sp_request_init(&req);
  assert_int_equal(sp_policy_add_ports(pol, &req), 0);
  assert_int_equal(req.nports, 4);
  assert_int_equal(req.ports[0].port, 587);
  assert_int_equal(req.ports[0].tls_mode, SP_TLS_STARTTLS);
  assert_int_equal(req.ports[1].tls_mode, SP_TLS_IMPLICIT);
  assert_int_equal(req.ports[2].tls_mode, SP_TLS_AUTO);
  sp_policy_free(pol);
}

/* Bad inputs give a message with the line. */
static void bad_inputs(void **state) {
  (void)state;
  struct {
    const char *text;
    const char *want;
  } cases[] = {
      {"ports:\n  587:\n    colour: blue\n", "line 3"},
      {"ports:\n  587:\n    state: ajar\n", "bad value for state"},
      {"ports:\n  99999:\n    state: open\n", "not a port number"},
      {"ports:\n  smtp:\n    state: open\n", "not a port number"},
      {"ports:\n  587:\n    tls: sometimes\n", "bad value for tls"},
      {"ports:\n  587:\n    min_tls: \"2.0\"\n", "bad value for min_tls"},
      {"ports:\n  587:\n    mechanisms: PLAIN\n", "bad value for mechanisms"},
      {"ports:\n  587: {}\n  587: {}\n", "given twice"},
      {"hosts: []\n", "unknown key"},
      {"ports: [587]\n", "must map"},
      {"ports:\n  587: [\n", "policy line"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char err[256] = "";
    struct sp_policy *pol = load(cases[i].text, err, sizeof(err));
    if (pol)
      fail_msg("case %zu accepted", i);
    if (!strstr(err, cases[i].want))
      fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].want);
  }
  char err[256];
  assert_null(sp_policy_load("/nonexistent/policy.yml", err, sizeof(err)));
  assert_non_null(strstr(err, "/nonexistent/policy.yml"));
}

/* Every deviation of a host is reported, and an expected-closed port
 * that is closed turns ok. */
static void deviations(void **state) {
  (void)state;
  char err[256];
  struct sp_policy *pol = load(example, err, sizeof(err));
  assert_non_null(pol);
  struct sp_result res[4];
  memset(res, 0, sizeof(res));
  /* 587: AUTH before TLS, CRAM-MD5 not allowed, TLS 1.1 */
  res[0].port = 587;
  res[0].code = SP_AUTH_BEFORE_TLS;
  res[0].tls = true;
  snprintf(res[0].tls_version, sizeof(res[0].tls_version), "%s", "TLSv1.1");
  res[0].caps_plain.seen = true;
  res[0].caps_plain.flags = SP_CAP_STARTTLS | SP_CAP_AUTH;
  snprintf(res[0].caps_plain.auth_mechs, sizeof(res[0].caps_plain.auth_mechs),
           "%s", "PLAIN");
  res[0].caps_tls.seen = true;
  res[0].caps_tls.flags = SP_CAP_AUTH;
  snprintf(res[0].caps_tls.auth_mechs, sizeof(res[0].caps_tls.auth_mechs), "%s",
           "PLAIN CRAM-MD5");
  /* 465: fine */
  res[1].port = 465;
  res[1].tls = true;
  res[1].implicit_tls = true;
  snprintf(res[1].tls_version, sizeof(res[1].tls_version), "%s", "TLSv1.3");
  /* 25: AUTH offered after TLS */
  res[2].port = 25;
  res[2].role = SP_ROLE_RELAY;
  res[2].tls = true;
  snprintf(res[2].tls_version, sizeof(res[2].tls_version), "%s", "TLSv1.3");
  res[2].caps_tls.seen = true;
  res[2].caps_tls.flags = SP_CAP_AUTH;
  snprintf(res[2].caps_tls.auth_mechs, sizeof(res[2].caps_tls.auth_mechs), "%s",
           "PLAIN");
  /* 2525: closed, as expected */
  res[3].port = 2525;
  res[3].code = SP_CONNECT_REFUSED;
  res[3].state = SP_STATE_CRITICAL;
  struct sp_batch batch = {.results = res, .nresults = 4, .dns_s = -1};
  struct sp_deviation dev[16];
  int n = sp_policy_check(pol, &batch, dev, 16);
  assert_int_equal(n, 4);
  assert_int_equal(dev[0].port, 587);
  assert_string_equal(dev[0].rule, "auth");
  assert_string_equal(dev[1].rule, "mechanisms");
  assert_non_null(strstr(dev[1].detail, "CRAM-MD5"));
  assert_string_equal(dev[2].rule, "min_tls");
  assert_int_equal(dev[3].port, 25);
  assert_string_equal(dev[3].rule, "auth");
  assert_int_equal(res[0].code, SP_POLICY_VIOLATION);
  assert_int_equal(res[0].state, SP_STATE_CRITICAL);
  assert_non_null(strstr(res[0].detail, "(and more)"));
  assert_int_equal(res[1].code, SP_OK);
  assert_int_equal(res[3].code, SP_OK);
  assert_int_equal(res[3].state, SP_STATE_OK);
  /* an open port the policy wants closed */
  res[3].code = SP_OK;
  n = sp_policy_check(pol, &batch, dev, 16);
  assert_string_equal(dev[n - 1].rule, "state");
  assert_int_equal(dev[n - 1].port, 2525);
  /* the output array bound holds */
  assert_int_equal(sp_policy_check(pol, &batch, dev, 2), 2);
  sp_policy_free(pol);
}

/* Run this file's tests. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(example_loads),
      cmocka_unit_test(bad_inputs),
      cmocka_unit_test(deviations),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
