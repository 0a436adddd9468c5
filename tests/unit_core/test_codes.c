/* Unit tests: names tables and the role x code -> state table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "smtp_probe.h"

/* Every code has a unique word and a hint, and parses back. */
static void code_words(void **state) {
  (void)state;
  static const char *const contract[] = {"ok",
                                         "dns_error",
                                         "connect_refused",
                                         "connect_timeout",
                                         "network_unreachable",
                                         "connection_closed",
                                         "banner_timeout",
                                         "read_timeout",
                                         "rejected",
                                         "deferred",
                                         "protocol_error",
                                         "tls_mode_mismatch",
                                         "starttls_unavailable",
                                         "tls_handshake_failed",
                                         "tls_weak_protocol",
                                         "cert_untrusted",
                                         "cert_hostname_mismatch",
                                         "cert_expired",
                                         "cert_expiring",
                                         "auth_before_tls",
                                         "auth_unavailable",
                                         "auth_failed",
                                         "starttls_injection",
                                         "policy_violation",
                                         "dnssec_bogus",
                                         "dane_mismatch",
                                         "dane_unusable",
                                         "mta_sts_policy_error",
                                         "mta_sts_mx_mismatch",
                                         "tls_rpt_invalid",
                                         "spf_missing",
                                         "spf_invalid",
                                         "dmarc_missing",
                                         "dmarc_invalid",
                                         "dkim_missing",
                                         "dkim_invalid",
                                         "delivery_timeout",
                                         "bounced",
                                         "delivery_delayed",
                                         "delivered_to_junk",
                                         "dkim_verify_failed",
                                         "authres_failed",
                                         "hop_without_tls",
                                         "mailbox_unreachable",
                                         "mailbox_auth_failed"};
  assert_int_equal(sizeof(contract) / sizeof(contract[0]), SP_CODE_COUNT);
  for (int i = 0; i < SP_CODE_COUNT; i++) {
    assert_string_equal(sp_code_name((enum sp_code)i), contract[i]);
    assert_int_equal(sp_code_from_name(contract[i]), i);
    assert_true(strlen(sp_code_hint((enum sp_code)i)) > 5);
  }
  assert_int_equal(sp_code_from_name("nope"), -1);
  assert_int_equal(sp_code_from_name(NULL), -1);
}

/* A code set holds every code, each once, and nothing out of range. */
static void code_sets(void **state) {
  (void)state;
  struct sp_code_set set = {{0}};
  for (int c = 0; c < SP_CODE_COUNT; c += 2)
    sp_code_set_add(&set, (enum sp_code)c);
  sp_code_set_add(&set, (enum sp_code)SP_CODE_COUNT); /* ignored */
  sp_code_set_add(&set, (enum sp_code) - 1);          /* ignored */
  for (int c = 0; c < SP_CODE_COUNT; c++)
    assert_int_equal(sp_code_set_has(&set, (enum sp_code)c), c % 2 == 0);
  assert_false(sp_code_set_has(&set, (enum sp_code)SP_CODE_COUNT));
  /* Every code has a scope: the port codes, then the domain and
   * round-trip codes the next issues produce. */
  for (int c = 0; c <= SP_POLICY_VIOLATION; c++)
    assert_int_equal(sp_code_scope((enum sp_code)c), SP_SCOPE_PORT);
  assert_int_equal(sp_code_scope(SP_DANE_MISMATCH), SP_SCOPE_DOMAIN);
  assert_int_equal(sp_code_scope(SP_BOUNCED), SP_SCOPE_ROUND_TRIP);
  /* MTA-STS testing softens the policy codes, and only those. */
  assert_int_equal(
      sp_code_state_sts(SP_MTA_STS_MX_MISMATCH, SP_ROLE_RELAY, false),
      SP_STATE_CRITICAL);
  assert_int_equal(
      sp_code_state_sts(SP_MTA_STS_MX_MISMATCH, SP_ROLE_RELAY, true),
      SP_STATE_WARNING);
  assert_int_equal(sp_code_state_sts(SP_DANE_MISMATCH, SP_ROLE_RELAY, true),
                   SP_STATE_CRITICAL);
  assert_string_equal(sp_code_scope_name(SP_SCOPE_DOMAIN), "domain");
  assert_string_equal(sp_code_scope_name(SP_SCOPE_ROUND_TRIP), "round_trip");
}

/* Phase names are the contract words, in order. */
static void phase_words(void **state) {
  (void)state;
  static const char *const contract[] = {
      "dns",       "connect",       "banner",   "ehlo",
      "starttls",  "tls_handshake", "ehlo_tls", "auth",
      "mail_from", "rcpt_to",       "total"};
  assert_int_equal(sizeof(contract) / sizeof(contract[0]), SP_PHASE_COUNT);
  for (int i = 0; i < SP_PHASE_COUNT; i++)
    assert_string_equal(sp_phase_name((enum sp_phase)i), contract[i]);
}

/* Ports get their documented default roles. */
static void default_roles(void **state) {
  (void)state;
  assert_int_equal(sp_role_for_port(25), SP_ROLE_RELAY);
  assert_int_equal(sp_role_for_port(465), SP_ROLE_IMPLICIT);
  assert_int_equal(sp_role_for_port(587), SP_ROLE_SUBMISSION);
  assert_int_equal(sp_role_for_port(2525), SP_ROLE_SUBMISSION);
  assert_int_equal(sp_role_from_name("Relay"), SP_ROLE_RELAY);
  /* Every adapter documents "default" (by port number): one parser. */
  assert_int_equal(sp_role_from_name("default"), SP_ROLE_DEFAULT);
  assert_int_equal(sp_role_from_name("Default"), SP_ROLE_DEFAULT);
  assert_int_equal(sp_role_from_name("dflt"), -1);
  /* One TLS version grammar for every adapter and the policy file. */
  assert_int_equal(sp_tls_version_from_name("1.2"), 0x0303);
  assert_int_equal(sp_tls_version_from_name("TLSv1.2"), 0x0303);
  assert_int_equal(sp_tls_version_from_name("tls12"), 0x0303);
  assert_int_equal(sp_tls_version_from_name("TLS1.3"), 0x0304);
  assert_int_equal(sp_tls_version_from_name("TLSv1"), 0x0301);
  assert_int_equal(sp_tls_version_from_name("1.0"), 0x0301);
  assert_int_equal(sp_tls_version_from_name("1"), 0);
  assert_int_equal(sp_tls_version_from_name("12"), 0);
  assert_int_equal(sp_tls_version_from_name("1.4"), 0);
  assert_int_equal(sp_tls_version_from_name("TLSv1.2x"), 0);
  assert_int_equal(sp_tls_version_from_name(""), 0);
  assert_int_equal(sp_tls_version_from_name(NULL), 0);
  assert_int_equal(sp_tls_mode_from_name("STARTTLS"), SP_TLS_STARTTLS);
  assert_int_equal(sp_tls_mode_from_name("tls"), -1);
}

/* The table: what is relaxed on relay and what never is. */
static void role_table(void **state) {
  (void)state;
  assert_int_equal(sp_code_state(SP_OK, SP_ROLE_SUBMISSION), SP_STATE_OK);
  assert_int_equal(sp_code_state(SP_STARTTLS_UNAVAILABLE, SP_ROLE_SUBMISSION),
                   SP_STATE_CRITICAL);
  assert_int_equal(sp_code_state(SP_STARTTLS_UNAVAILABLE, SP_ROLE_RELAY),
                   SP_STATE_WARNING);
  assert_int_equal(sp_code_state(SP_CERT_UNTRUSTED, SP_ROLE_IMPLICIT),
                   SP_STATE_CRITICAL);
  assert_int_equal(sp_code_state(SP_CERT_UNTRUSTED, SP_ROLE_RELAY),
                   SP_STATE_WARNING);
  assert_int_equal(sp_code_state(SP_CERT_HOSTNAME_MISMATCH, SP_ROLE_RELAY),
                   SP_STATE_WARNING);
  assert_int_equal(sp_code_state(SP_CERT_EXPIRED, SP_ROLE_RELAY),
                   SP_STATE_CRITICAL);
  assert_int_equal(sp_code_state(SP_AUTH_BEFORE_TLS, SP_ROLE_SUBMISSION),
                   SP_STATE_CRITICAL);
  assert_int_equal(sp_code_state(SP_AUTH_BEFORE_TLS, SP_ROLE_RELAY),
                   SP_STATE_WARNING);
  assert_int_equal(sp_code_state(SP_CERT_EXPIRING, SP_ROLE_SUBMISSION),
                   SP_STATE_WARNING);
  assert_int_equal(sp_code_state(SP_CONNECT_TIMEOUT, SP_ROLE_RELAY),
                   SP_STATE_CRITICAL);
  assert_int_equal(sp_code_state((enum sp_code)99, SP_ROLE_RELAY),
                   SP_STATE_UNKNOWN);
  /* Every failure is at least WARNING on every role. */
  for (int c = 1; c < SP_CODE_COUNT; c++)
    for (int r = SP_ROLE_SUBMISSION; r <= SP_ROLE_RELAY; r++)
      assert_true(sp_code_state((enum sp_code)c, (enum sp_role)r) >=
                  SP_STATE_WARNING);
}

/* Only timeout-like codes are re-mapped by -t SECONDS:STATE. */
static void timeout_codes(void **state) {
  (void)state;
  assert_true(sp_code_is_timeout(SP_CONNECT_TIMEOUT));
  assert_true(sp_code_is_timeout(SP_BANNER_TIMEOUT));
  assert_true(sp_code_is_timeout(SP_READ_TIMEOUT));
  assert_true(sp_code_is_timeout(SP_NETWORK_UNREACHABLE));
  assert_true(sp_code_is_timeout(SP_DNS_ERROR));
  assert_false(sp_code_is_timeout(SP_CONNECT_REFUSED));
  assert_false(sp_code_is_timeout(SP_REJECTED));
}

/* Days left round down and go negative once past. */
static void days_left(void **state) {
  (void)state;
  assert_int_equal(sp_days_left(1000 + 86400 * 3, 1000), 3);
  assert_int_equal(sp_days_left(1000 + 86400 * 3 - 1, 1000), 2);
  assert_int_equal(sp_days_left(1000, 1000), 0);
  assert_int_equal(sp_days_left(1000 - 1, 1000), -1);
  assert_int_equal(sp_days_left(1000 - 86400, 1000), -1);
  assert_int_equal(sp_days_left(1000 - 86401, 1000), -2);
}

/* The long output names code, state, TLS and certificate. */
static void describe_text(void **state) {
  (void)state;
  static struct sp_result res;
  memset(&res, 0, sizeof(res));
  res.port = 587;
  res.role = SP_ROLE_SUBMISSION;
  res.code = SP_CERT_EXPIRED;
  res.state = SP_STATE_CRITICAL;
  res.tls = true;
  snprintf(res.tls_version, sizeof(res.tls_version), "%s", "TLSv1.3");
  snprintf(res.detail, sizeof(res.detail), "%s",
           "a certificate expired 3 days ago");
  struct sp_cert cert = {0};
  res.certs = &cert;
  res.ncerts = 1;
  snprintf(res.certs[0].subject, sizeof(res.certs[0].subject), "%s", "CN=mx");
  res.phase_done[SP_PHASE_TOTAL] = true;
  res.phase_s[SP_PHASE_TOTAL] = 0.25;
  sp_code_set_add(&res.findings, SP_CERT_EXPIRED);
  sp_code_set_add(&res.findings, SP_CERT_UNTRUSTED);
  char buf[2048];
  sp_result_describe(&res, 1, buf, sizeof(buf));
  assert_non_null(strstr(buf, "587 (submission"));
  assert_non_null(strstr(buf, "cert_expired CRITICAL"));
  assert_non_null(strstr(buf, "TLSv1.3"));
  assert_non_null(strstr(buf, "CN=mx"));
  assert_non_null(strstr(buf, "total=0.2500s"));
  assert_non_null(strstr(buf, "also found: cert_untrusted"));
  char small[16];
  size_t n = sp_result_describe(&res, 1, small, sizeof(small));
  assert_int_equal(n, sizeof(small) - 1);
  assert_int_equal(strlen(small), sizeof(small) - 1);
  char hint[128];
  sp_result_hint(&res, hint, sizeof(hint));
  assert_string_equal(hint, "a certificate expired 3 days ago");
}

/* Run this file's tests. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(code_words),  cmocka_unit_test(code_sets),
      cmocka_unit_test(phase_words), cmocka_unit_test(default_roles),
      cmocka_unit_test(role_table),  cmocka_unit_test(timeout_codes),
      cmocka_unit_test(days_left),   cmocka_unit_test(describe_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
