/* Unit tests: request defaults and validation messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "smtp_probe.h"

/* A valid base request. */
static void base(struct sp_request *req) {
  sp_request_init(req);
  req->host = "mail.example.com";
  assert_int_equal(sp_request_add_port(req, 587, SP_TLS_AUTO, SP_ROLE_DEFAULT),
                   0);
}

/* Expect validation to fail with a message naming field. */
static void expect_bad(struct sp_request *req, const char *field) {
  char err[256];
  assert_int_equal(sp_request_validate(req, err, sizeof(err)), -1);
  assert_non_null(strstr(err, field));
}

/* Defaults validate. */
static void defaults_ok(void **state) {
  (void)state;
  struct sp_request req;
  base(&req);
  char err[256];
  assert_int_equal(sp_request_validate(&req, err, sizeof(err)), 0);
  assert_true(req.timeout_s == 10.0);
  assert_int_equal(req.cert_warn_days, -1);
}

/* Each bad field is named. */
static void bad_fields(void **state) {
  (void)state;
  struct sp_request req;
  base(&req);
  req.host = NULL;
  expect_bad(&req, "host");
  base(&req);
  req.host = "bad host\n";
  expect_bad(&req, "host");
  base(&req);
  req.nports = 0;
  expect_bad(&req, "ports");
  base(&req);
  sp_request_add_port(&req, 587, SP_TLS_AUTO, SP_ROLE_DEFAULT);
  expect_bad(&req, "twice");
  base(&req);
  req.ports[0].port = 0;
  expect_bad(&req, "ports");
  base(&req);
  req.timeout_s = 0;
  expect_bad(&req, "timeout");
  base(&req);
  req.banner_wait_s = 20;
  expect_bad(&req, "banner_wait");
  base(&req);
  req.dns_server = "resolver.example";
  expect_bad(&req, "dns_server");
  base(&req);
  req.dns_server = "127.0.0.1:99999";
  expect_bad(&req, "dns_server");
  base(&req);
  req.source = "not-an-ip";
  expect_bad(&req, "source");
  base(&req);
  req.cafile = "/nonexistent/ca.pem";
  expect_bad(&req, "cafile");
  base(&req);
  req.cert_warn_days = 7;
  req.cert_crit_days = 14;
  expect_bad(&req, "cert_days");
  base(&req);
  req.ports[0].tls_mode = (enum sp_tls_mode)9;
  expect_bad(&req, "tls");
}

/* Good resolver spellings pass. */
static void dns_server_forms(void **state) {
  (void)state;
  const char *good[] = {"127.0.0.1", "127.0.0.1:5300", "[::1]:53", "::1"};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    struct sp_request req;
    base(&req);
    req.dns_server = good[i];
    char err[256];
    assert_int_equal(sp_request_validate(&req, err, sizeof(err)), 0);
  }
}

/* The port list is capped. */
static void port_cap(void **state) {
  (void)state;
  struct sp_request req;
  sp_request_init(&req);
  for (int i = 0; i < SP_MAX_PORTS; i++)
    assert_int_equal(sp_request_add_port(&req, (uint16_t)(1000 + i),
                                         SP_TLS_AUTO, SP_ROLE_DEFAULT),
                     0);
  assert_int_equal(sp_request_add_port(&req, 9, SP_TLS_AUTO, SP_ROLE_DEFAULT),
                   -1);
}

/* Run this file's tests. */
/* Never called: the submits below are refused before anything runs. */
static void not_called(struct sp_batch *batch, void *user) {
  (void)user;
  sp_batch_free(batch);
  fail_msg("a refused request reached its completion callback");
}

/* The engine refuses what validation refuses: bad fields, and a cafile it
 * cannot load (it reads the file itself, once per file). */
static void engine_refuses(void **state) {
  (void)state;
  char err[256];
  struct sp_engine *eng = sp_engine_new(err, sizeof(err));
  assert_non_null(eng);
  struct sp_request req;
  base(&req);
  req.timeout_s = 0;
  assert_int_equal(
      sp_engine_submit(eng, &req, not_called, NULL, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "timeout"));
  base(&req);
  req.cafile = "/nonexistent/ca.pem";
  assert_int_equal(
      sp_engine_submit(eng, &req, not_called, NULL, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "cafile"));
  assert_non_null(strstr(err, "/nonexistent/ca.pem"));
  assert_int_equal(sp_engine_inflight(eng), 0);
  sp_engine_free(eng);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(defaults_ok),      cmocka_unit_test(bad_fields),
      cmocka_unit_test(dns_server_forms), cmocka_unit_test(port_cap),
      cmocka_unit_test(engine_refuses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
