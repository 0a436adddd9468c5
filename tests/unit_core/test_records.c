/* Unit tests: the mail-domain record parsers (MTA-STS TXT and policy, the
 * mx pattern match, TLS-RPT, DMARC, SPF, DKIM keys), on the points the
 * common checkers get wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "records.h"

/* Assert err holds want. */
static void err_has(const char *err, const char *want) {
  if (!strstr(err, want))
    fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

/* _mta-sts TXT: v=STSv1 first, one id of 1-32 alphanumerics. */
static void sts_txt(void **state) {
  (void)state;
  char id[64], err[256];
  assert_int_equal(sp_sts_txt_parse("v=STSv1; id=20240101T0000", id, sizeof(id),
                                    err, sizeof(err)),
                   0);
  assert_string_equal(id, "20240101T0000");
  assert_int_equal(sp_sts_txt_parse("v=STSv1;id=abc;ext=1", id, sizeof(id), err,
                                    sizeof(err)),
                   0);
  assert_int_equal(
      sp_sts_txt_parse("v=STSv2; id=abc", id, sizeof(id), err, sizeof(err)),
      -1);
  err_has(err, "v=STSv1");
  assert_int_equal(
      sp_sts_txt_parse("v=STSv1; id=a-b", id, sizeof(id), err, sizeof(err)),
      -1);
  err_has(err, "1-32 letters and digits");
  assert_int_equal(
      sp_sts_txt_parse("v=STSv1; id=123456789012345678901234567890123", id,
                       sizeof(id), err, sizeof(err)),
      -1);
  assert_int_equal(
      sp_sts_txt_parse("v=STSv1;", id, sizeof(id), err, sizeof(err)), -1);
  err_has(err, "no id=");
  assert_int_equal(
      sp_sts_txt_parse("v=STSv1; id=a; id=b", id, sizeof(id), err, sizeof(err)),
      -1);
}

/* The policy file: the keys, CRLF or LF, mx required unless none. */
static void sts_policy(void **state) {
  (void)state;
  struct sp_sts_policy pol;
  char err[256];
  const char *good = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com"
                     "\r\nmx: *.example.net\r\nmax_age: 604800\r\n";
  assert_int_equal(
      sp_sts_policy_parse(good, strlen(good), &pol, err, sizeof(err)), 0);
  assert_int_equal(pol.mode, SP_STS_ENFORCE);
  assert_int_equal(pol.max_age, 604800);
  assert_int_equal(pol.nmx, 2);
  assert_string_equal(pol.mx[1], "*.example.net");
  const char *none = "version: STSv1\nmode: none\nmax_age: 86400\n";
  assert_int_equal(
      sp_sts_policy_parse(none, strlen(none), &pol, err, sizeof(err)), 0);
  assert_int_equal(pol.mode, SP_STS_NONE);
  const char *nomx = "version: STSv1\nmode: testing\nmax_age: 86400\n";
  assert_int_equal(
      sp_sts_policy_parse(nomx, strlen(nomx), &pol, err, sizeof(err)), -1);
  err_has(err, "no mx line");
  const char *old = "version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n";
  assert_int_equal(
      sp_sts_policy_parse(old, strlen(old), &pol, err, sizeof(err)), -1);
  const char *age = "version: STSv1\nmode: enforce\nmx: a\nmax_age: 31557601\n";
  assert_int_equal(
      sp_sts_policy_parse(age, strlen(age), &pol, err, sizeof(err)), -1);
  err_has(err, "max_age");
  const char *mode = "version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n";
  assert_int_equal(
      sp_sts_policy_parse(mode, strlen(mode), &pol, err, sizeof(err)), -1);
  const char *junk = "version STSv1\n";
  assert_int_equal(
      sp_sts_policy_parse(junk, strlen(junk), &pol, err, sizeof(err)), -1);
  err_has(err, "line 1");
  assert_int_equal(
      sp_sts_policy_parse(good, SP_STS_MAX_BODY + 1, &pol, err, sizeof(err)),
      -1);
}

/* mx patterns: anchored, any case, "*" is exactly one label. */
static void sts_mx_match(void **state) {
  (void)state;
  assert_true(sp_sts_mx_match("mail.example.com", "mail.example.com"));
  assert_true(sp_sts_mx_match("mail.example.com", "MAIL.Example.com."));
  assert_true(sp_sts_mx_match("*.example.com", "mx1.example.com"));
  assert_false(sp_sts_mx_match("*.example.com", "a.b.example.com"));
  assert_false(sp_sts_mx_match("*.example.com", "example.com"));
  assert_false(sp_sts_mx_match("example.com", "mail.example.com"));
  assert_false(sp_sts_mx_match("mail.example.com", "mail.example.com.evil"));
  assert_false(sp_sts_mx_match("*.example.com", "mx1.example.com.evil"));
  assert_false(sp_sts_mx_match("*.example.com", "mx1.badexample.com"));
  assert_false(sp_sts_mx_match("", "mx1.example.com"));
}

/* TLS-RPT: v=TLSRPTv1 first, rua with mailto:/https: URIs. */
static void tlsrpt(void **state) {
  (void)state;
  struct sp_tlsrpt r;
  char err[256];
  assert_int_equal(sp_tlsrpt_parse("v=TLSRPTv1; rua=mailto:tls@example.com,"
                                   "https://r.example.com/tls",
                                   &r, err, sizeof(err)),
                   0);
  assert_int_equal(r.nrua, 2);
  assert_string_equal(r.rua[1], "https://r.example.com/tls");
  assert_int_equal(
      sp_tlsrpt_parse("v=TLSRPTv1; rua=ftp://x", &r, err, sizeof(err)), -1);
  err_has(err, "is not mailto: or https:");
  assert_int_equal(sp_tlsrpt_parse("v=TLSRPTv1", &r, err, sizeof(err)), -1);
  err_has(err, "no rua=");
  assert_int_equal(
      sp_tlsrpt_parse("rua=mailto:a@b; v=TLSRPTv1", &r, err, sizeof(err)), -1);
}

/* DMARC: v=DMARC1 first, p= required, sp defaults to p, pct bounds. */
static void dmarc(void **state) {
  (void)state;
  struct sp_dmarc d;
  char err[256];
  assert_int_equal(sp_dmarc_parse("v=DMARC1; p=reject; adkim=s; "
                                  "rua=mailto:d@example.com; pct=50",
                                  &d, err, sizeof(err)),
                   0);
  assert_int_equal(d.p, SP_DMARC_REJECT);
  assert_int_equal(d.sp, SP_DMARC_REJECT);
  assert_true(d.strict_dkim);
  assert_false(d.strict_spf);
  assert_int_equal(d.pct, 50);
  assert_int_equal(d.nrua, 1);
  assert_int_equal(
      sp_dmarc_parse("v=DMARC1; p=none; sp=quarantine", &d, err, sizeof(err)),
      0);
  assert_int_equal(d.sp, SP_DMARC_QUARANTINE);
  assert_int_equal(sp_dmarc_parse("v=DMARC1; sp=none", &d, err, sizeof(err)),
                   -1);
  err_has(err, "no p=");
  assert_int_equal(sp_dmarc_parse("v=DMARC1; p=block", &d, err, sizeof(err)),
                   -1);
  assert_int_equal(
      sp_dmarc_parse("v=DMARC1; p=none; pct=101", &d, err, sizeof(err)), -1);
  assert_int_equal(sp_dmarc_parse("p=none; v=DMARC1", &d, err, sizeof(err)),
                   -1);
}

/* SPF: syntax, lookup terms of the record, the all qualifier. */
static void spf(void **state) {
  (void)state;
  struct sp_spf s;
  char err[256];
  assert_int_equal(sp_spf_parse("v=spf1 ip4:192.0.2.0/24 include:_spf.example"
                                ".com mx a:mail.example.com -all",
                                &s, err, sizeof(err)),
                   0);
  assert_int_equal(s.lookups, 3);
  assert_false(s.all_pass);
  assert_int_equal(sp_spf_parse("v=spf1 +all", &s, err, sizeof(err)), 0);
  assert_true(s.all_pass);
  assert_int_equal(sp_spf_parse("v=spf1 ptr ?all", &s, err, sizeof(err)), 0);
  assert_true(s.has_ptr);
  assert_true(s.all_neutral);
  assert_int_equal(
      sp_spf_parse("v=spf1 redirect=_spf.example.com", &s, err, sizeof(err)),
      0);
  assert_true(s.has_redirect);
  assert_int_equal(s.lookups, 1);
  assert_int_equal(sp_spf_parse("v=spf1 foo:bar -all", &s, err, sizeof(err)),
                   -1);
  err_has(err, "unknown mechanism");
  assert_int_equal(
      sp_spf_parse("v=spf1 redirect=a redirect=b", &s, err, sizeof(err)), -1);
  assert_int_equal(sp_spf_parse("v=spf10 -all", &s, err, sizeof(err)), -1);
}

/* DKIM keys: the key's size from p=, revoked when empty. */
static void dkim(void **state) {
  (void)state;
  /* A 1024-bit RSA SubjectPublicKeyInfo (RFC 6376 appendix C style). */
  const char *rsa =
      "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmG"
      "qZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7o"
      "d+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToI"
      "MmPSPDdQPNUYckcQ2QIDAQAB";
  struct sp_dkim_key k;
  char err[256];
  assert_int_equal(sp_dkim_key_parse(rsa, &k, err, sizeof(err)), 0);
  assert_string_equal(k.k, "rsa");
  assert_false(k.revoked);
  assert_int_equal(k.bits, 1024);
  assert_int_equal(sp_dkim_key_parse("v=DKIM1; p=", &k, err, sizeof(err)), 0);
  assert_true(k.revoked);
  assert_int_equal(
      sp_dkim_key_parse("v=DKIM1; k=dsa; p=AAAA", &k, err, sizeof(err)), -1);
  assert_int_equal(sp_dkim_key_parse("v=DKIM1; p=!!!!", &k, err, sizeof(err)),
                   -1);
  assert_int_equal(
      sp_dkim_key_parse("k=rsa; v=DKIM1; p=", &k, err, sizeof(err)), -1);
  assert_int_equal(sp_dkim_key_parse("v=DKIM1", &k, err, sizeof(err)), -1);
  err_has(err, "no p=");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(sts_txt),      cmocka_unit_test(sts_policy),
      cmocka_unit_test(sts_mx_match), cmocka_unit_test(tlsrpt),
      cmocka_unit_test(dmarc),        cmocka_unit_test(spf),
      cmocka_unit_test(dkim),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
