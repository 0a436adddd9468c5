/* Unit tests: the recommendation ("which port should this app use?")
 * made from the ports probed together. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "smtp_probe.h"

/* Fill result r as port probed with code/state, over TLS mode mode. */
static void put(struct sp_result *r, uint16_t port, enum sp_code code,
                enum sp_tls_mode mode) {
  memset(r, 0, sizeof(*r));
  r->port = port;
  r->role = sp_role_for_port(port);
  r->code = code;
  r->state = sp_code_state(code, r->role);
  r->tls = mode != SP_TLS_NONE;
  r->implicit_tls = mode == SP_TLS_IMPLICIT;
}

/* The recommendation of n results. */
static struct sp_recommendation run(struct sp_result *res, int n) {
  struct sp_batch b = {.results = res, .nresults = n, .dns_s = -1};
  struct sp_recommendation rec;
  sp_recommend(&b, &rec);
  return rec;
}

/* Assert the text holds want. */
static void text_has(const struct sp_recommendation *rec, const char *want) {
  if (!strstr(rec->text, want))
    fail_msg("\"%s\" lacks \"%s\"", rec->text, want);
}

/* 587 works: it is the answer, and 465 is named as the alternative. */
static void prefers_587(void **state) {
  (void)state;
  struct sp_result r[2];
  put(&r[0], 587, SP_OK, SP_TLS_STARTTLS);
  put(&r[1], 465, SP_OK, SP_TLS_IMPLICIT);
  struct sp_recommendation rec = run(r, 2);
  assert_true(rec.has);
  assert_int_equal(rec.port, 587);
  assert_int_equal(rec.tls_mode, SP_TLS_STARTTLS);
  text_has(&rec, "use 587 starttls (works)");
  text_has(&rec, "465 implicit TLS also works");
}

/* 587 blocked from here, 2525 works: egress blocks 587. */
static void fallback_2525(void **state) {
  (void)state;
  struct sp_result r[3];
  put(&r[0], 587, SP_CONNECT_TIMEOUT, SP_TLS_NONE);
  put(&r[1], 465, SP_CONNECT_TIMEOUT, SP_TLS_NONE);
  put(&r[2], 2525, SP_OK, SP_TLS_STARTTLS);
  struct sp_recommendation rec = run(r, 3);
  assert_true(rec.has);
  assert_int_equal(rec.port, 2525);
  text_has(&rec, "egress blocks 587, use 2525 starttls");
}

/* 25 blocked is expected for apps; 587 is still the answer. */
static void port_25_blocked(void **state) {
  (void)state;
  struct sp_result r[2];
  put(&r[0], 25, SP_CONNECT_TIMEOUT, SP_TLS_NONE);
  put(&r[1], 587, SP_OK, SP_TLS_STARTTLS);
  struct sp_recommendation rec = run(r, 2);
  assert_int_equal(rec.port, 587);
  text_has(&rec, "25 is blocked from here: expected for apps");
}

/* 587 speaks the other TLS mode, 465 works: 465. */
static void use_465(void **state) {
  (void)state;
  struct sp_result r[2];
  put(&r[0], 587, SP_TLS_MODE_MISMATCH, SP_TLS_NONE);
  put(&r[1], 465, SP_OK, SP_TLS_IMPLICIT);
  struct sp_recommendation rec = run(r, 2);
  assert_int_equal(rec.port, 465);
  assert_int_equal(rec.tls_mode, SP_TLS_IMPLICIT);
  text_has(&rec, "(587: tls_mode_mismatch)");
}

/* No port works: what to check first, by symptom; none recommended. */
static void nothing_works(void **state) {
  (void)state;
  struct sp_result r[2];
  put(&r[0], 587, SP_CONNECT_TIMEOUT, SP_TLS_NONE);
  put(&r[1], 465, SP_CONNECT_TIMEOUT, SP_TLS_NONE);
  struct sp_recommendation rec = run(r, 2);
  assert_false(rec.has);
  text_has(&rec, "check the firewall or egress from here first");
  put(&r[0], 587, SP_TLS_HANDSHAKE_FAILED, SP_TLS_NONE);
  put(&r[1], 465, SP_TLS_HANDSHAKE_FAILED, SP_TLS_NONE);
  rec = run(r, 2);
  text_has(&rec, "the pairing of port and TLS mode");
  put(&r[0], 587, SP_AUTH_FAILED, SP_TLS_STARTTLS);
  rec = run(r, 1);
  text_has(&rec, "the credentials or the AUTH mechanism");
  put(&r[0], 587, SP_DEFERRED, SP_TLS_STARTTLS);
  rec = run(r, 1);
  text_has(&rec, "limits or load (4xx)");
  put(&r[0], 587, SP_REJECTED, SP_TLS_STARTTLS);
  rec = run(r, 1);
  text_has(&rec, "policy (5xx)");
}

/* Only probed ports count; relay-only runs get nothing; a port works
 * only when it works at every address. */
static void only_what_was_probed(void **state) {
  (void)state;
  struct sp_result r[2];
  put(&r[0], 25, SP_OK, SP_TLS_STARTTLS);
  struct sp_recommendation rec = run(r, 1);
  assert_false(rec.has);
  assert_string_equal(rec.text, "");
  put(&r[0], 587, SP_OK, SP_TLS_STARTTLS);
  put(&r[1], 587, SP_CONNECT_TIMEOUT, SP_TLS_NONE); /* another address */
  rec = run(r, 2);
  assert_false(rec.has);
  assert_null(strstr(rec.text, "2525"));
  /* A WARNING port still works (e.g. a certificate expiring soon). */
  put(&r[0], 587, SP_CERT_EXPIRING, SP_TLS_STARTTLS);
  rec = run(r, 1);
  assert_true(rec.has);
  assert_int_equal(rec.port, 587);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(prefers_587),     cmocka_unit_test(fallback_2525),
      cmocka_unit_test(port_25_blocked), cmocka_unit_test(use_465),
      cmocka_unit_test(nothing_works),   cmocka_unit_test(only_what_was_probed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
