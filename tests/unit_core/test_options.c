/* Unit tests: the option table and sp_request_set, the one parser of
 * every adapter's probe options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "smtp_probe.h"

/* Set key=value on req; assert it is accepted. */
static void set_ok(struct sp_request *req, const char *key, const char *v) {
  char err[256] = "";
  int rc = sp_request_set(req, key, v, err, sizeof(err));
  if (rc != 0)
    fail_msg("%s=%s refused: %s", key, v, err);
}

/* Set key=value on a fresh request; assert it is refused with a message
 * holding want. */
static void set_bad(const char *key, const char *v, const char *want) {
  struct sp_request req;
  sp_request_init(&req);
  char err[256] = "";
  if (sp_request_set(&req, key, v, err, sizeof(err)) == 0)
    fail_msg("%s=%s accepted", key, v ? v : "(null)");
  if (!strstr(err, want))
    fail_msg("%s=%s: message \"%s\" lacks \"%s\"", key, v ? v : "(null)", err,
             want);
}

/* Every row is complete, keys are unique, and find returns the row. */
static void table_rows(void **state) {
  (void)state;
  size_t n = 0;
  for (const struct sp_option *o; (o = sp_option_at(n)) != NULL; n++) {
    assert_non_null(o->key);
    assert_true(strlen(o->doc) > 5);
    assert_non_null(o->def);
    assert_ptr_equal(sp_option_find(o->key), o);
    for (size_t j = 0; j < n; j++)
      assert_string_not_equal(sp_option_at(j)->key, o->key);
  }
  assert_true(n >= 20);
  assert_null(sp_option_find("nope"));
  assert_null(sp_option_find(NULL));
}

/* Every field is set from text by its grammar. */
static void sets_fields(void **state) {
  (void)state;
  struct sp_request req;
  sp_request_init(&req);
  set_ok(&req, "host", "mail.example.com");
  set_ok(&req, "ports", "587,465");
  set_ok(&req, "ports", "465 2525"); /* appends, repeats ignored */
  set_ok(&req, "tls", "starttls");
  set_ok(&req, "role", "default");
  set_ok(&req, "sni", "mx.example.com");
  set_ok(&req, "cafile", "/etc/ssl/certs/ca-certificates.crt");
  set_ok(&req, "no_verify", "yes");
  set_ok(&req, "ehlo", "probe.example");
  set_ok(&req, "family", "ipv6");
  set_ok(&req, "all_addresses", "True");
  set_ok(&req, "source", "::1");
  set_ok(&req, "timeout", "1m30s");
  set_ok(&req, "banner_wait", "0.5");
  set_ok(&req, "dns_server", "127.0.10.53:5300");
  set_ok(&req, "cert_warn_days", "21");
  set_ok(&req, "cert_crit_days", "off");
  assert_int_equal(req.cert_crit_days, -1);
  set_ok(&req, "cert_crit_days", "-1");
  set_ok(&req, "cert_crit_days", "7");
  set_ok(&req, "auth_user", "probe@example.com");
  set_ok(&req, "auth_mech", "cram-md5");
  set_ok(&req, "mail_from", "a@example.com");
  set_ok(&req, "rcpt_to", "b@example.com");
  set_ok(&req, "send", "on");
  set_ok(&req, "check_injection", "1");
  set_ok(&req, "tls_trial", "false");
  set_ok(&req, "min_tls", "TLS13");
  set_ok(&req, "proxy_protocol", "V2");
  set_ok(&req, "client_cert", "/tmp/client.pem");
  set_ok(&req, "client_key", "/tmp/client.key");
  assert_string_equal(req.host, "mail.example.com");
  assert_int_equal(req.nports, 3);
  assert_int_equal(req.ports[0].port, 587);
  assert_int_equal(req.ports[1].port, 465);
  assert_int_equal(req.ports[2].port, 2525);
  assert_int_equal(req.tls_mode, SP_TLS_STARTTLS);
  assert_int_equal(req.role, SP_ROLE_DEFAULT);
  assert_true(req.no_verify);
  assert_int_equal(req.family, SP_FAMILY_IPV6);
  assert_true(req.all_addresses);
  assert_true(req.timeout_s == 90.0);
  assert_true(req.banner_wait_s == 0.5);
  assert_int_equal(req.cert_warn_days, 21);
  assert_int_equal(req.cert_crit_days, 7);
  assert_string_equal(req.auth_mech, "CRAM-MD5"); /* canonical spelling */
  assert_true(req.send_message);
  assert_true(req.check_injection);
  assert_true(req.no_tls_trial);
  assert_int_equal(req.min_tls_version, 0x0304);
  assert_int_equal(req.proxy_protocol, SP_PROXY_V2);
  assert_string_equal(req.client_cert, "/tmp/client.pem");
  assert_string_equal(req.client_key, "/tmp/client.key");
}

/* Bad values are refused, with one wording per grammar. */
static void refuses(void **state) {
  (void)state;
  set_bad("nope", "1", "unknown option");
  set_bad("timeout", NULL, "needs a value");
  set_bad("ports", "0", "not a list of ports");
  set_bad("ports", "587,x", "not a list of ports");
  set_bad("ports", "70000", "not a list of ports");
  set_bad("ports", ",", "no port given");
  set_bad("tls", "tls", "is not auto, none, starttls or implicit");
  set_bad("role", "king", "is not default, submission, implicit or relay");
  set_bad("min_tls", "1.4", "is not 1.0, 1.1, 1.2 or 1.3");
  set_bad("family", "ipx", "is not any, ipv4 or ipv6");
  set_bad("auth_mech", "DIGEST-MD5", "is not PLAIN, LOGIN, CRAM-MD5");
  set_bad("no_verify", "maybe", "is not true or false");
  set_bad("timeout", "-1", "not a number of seconds");
  set_bad("timeout", "3601", "not a number of seconds");
  set_bad("timeout", "0", "must be above 0");
  set_bad("timeout", "5x", "not a number of seconds");
  set_bad("timeout", "30s1m", "not a number of seconds"); /* units fall */
  set_bad("cert_warn_days", "-2", "not a whole number 0-36500, or off");
  set_bad("cert_warn_days", "7d", "not a whole number");
  set_bad("host", "bad host", "not a host name or IP address");
  set_bad("source", "mail.example.com", "not an IP address");
  set_bad("source", "127.0.0.1:25", "not an IP address");
  set_bad("dns_server", "resolver:53", "not IP[:PORT]");
  set_bad("mail_from", "a b@example.com", "not printable");
  set_bad("mail_from", "", "empty");
  set_bad("cafile", "", "empty or overlong path");
  set_bad("proxy_protocol", "v3", "is not none, v1 or v2");
}

/* The grammar helpers adapters with typed values use. */
static void grammars(void **state) {
  (void)state;
  double d = -1;
  assert_int_equal(sp_parse_seconds("500ms", &d), 0);
  assert_true(d == 0.5);
  assert_int_equal(sp_parse_seconds("2m", &d), 0);
  assert_true(d == 120.0);
  assert_int_equal(sp_parse_seconds("1h1m1s", &d), 0);
  assert_true(d == 3661.0);
  assert_int_equal(sp_parse_seconds("2.5", &d), 0);
  assert_true(d == 2.5);
  assert_int_equal(sp_parse_seconds("ms", &d), -1);
  assert_int_equal(sp_parse_seconds("1s1s", &d), -1);
  assert_int_equal(sp_parse_seconds("", &d), -1);
  assert_int_equal(sp_parse_seconds("nan", &d), -1);
  bool b = false;
  assert_int_equal(sp_parse_bool("ON", &b), 0);
  assert_true(b);
  assert_int_equal(sp_parse_bool("no", &b), 0);
  assert_false(b);
  assert_int_equal(sp_parse_bool("2", &b), -1);
  assert_int_equal(sp_family_from_name("ip4"), SP_FAMILY_IPV4);
  assert_int_equal(sp_family_from_name("6"), SP_FAMILY_IPV6);
  assert_int_equal(sp_family_from_name("ipv5"), -1);
}

/* A client certificate needs its key, and the key its certificate. */
static void client_cert_pairs(void **state) {
  (void)state;
  struct sp_request req;
  sp_request_init(&req);
  set_ok(&req, "host", "127.0.0.1");
  set_ok(&req, "ports", "587");
  set_ok(&req, "client_cert", "/tmp/client.pem");
  char err[256];
  assert_int_equal(sp_request_validate(&req, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "client_cert and client_key go together"));
}

/* Request-wide tls and role reach the ports through validation: a
 * request-wide "none" with AUTH is refused like a per-port "none". */
static void request_wide_tls(void **state) {
  (void)state;
  struct sp_request req;
  sp_request_init(&req);
  set_ok(&req, "host", "127.0.0.1");
  set_ok(&req, "ports", "587");
  set_ok(&req, "tls", "none");
  set_ok(&req, "auth_user", "u@example.com");
  req.auth_secret = "secret";
  char err[256];
  assert_int_equal(sp_request_validate(&req, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "never sent without TLS"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(table_rows),       cmocka_unit_test(sets_fields),
      cmocka_unit_test(refuses),          cmocka_unit_test(grammars),
      cmocka_unit_test(request_wide_tls), cmocka_unit_test(client_cert_pairs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
