/* Unit tests: provider presets (providers.c): the built-in table's rows,
 * names and aliases, host patterns and the other provider's host, the
 * parser's refusals, the "provider" option and the check of fabricated
 * results against a provider's documentation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_probe.h"

/* The built-in table, which must load. */
static const struct sp_provider_set *table(void) {
  char err[256] = "";
  const struct sp_provider_set *set = sp_providers_builtin(err, sizeof(err));
  if (!set)
    fail_msg("built-in providers: %s", err);
  return set;
}

/* Every row has a name, host, source URL, as-of date and ports; the ten
 * providers the issue names are there. */
static void test_builtin_rows(void **state) {
  (void)state;
  const struct sp_provider_set *set = table();
  size_t n = 0;
  for (const struct sp_provider *p; (p = sp_providers_at(set, n)); n++) {
    assert_true(p->name[0] && p->host[0]);
    assert_true(strncmp(p->source, "https://", 8) == 0);
    assert_true(strlen(p->as_of) >= 4);
    struct sp_request req;
    sp_request_init(&req);
    assert_int_equal(sp_policy_add_ports(p->policy, &req), 0);
    assert_true(req.nports > 0);
  }
  assert_true(n >= 10);
  static const char *const want[] = {
      "gmail", "microsoft365", "sendgrid", "ses",    "mailgun",     "postmark",
      "brevo", "zoho",         "fastmail", "icloud", "google-relay"};
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    assert_non_null(sp_providers_find(set, want[i]));
}

/* Keys and aliases in any case; unknown names are NULL. */
static void test_find(void **state) {
  (void)state;
  const struct sp_provider_set *set = table();
  assert_string_equal(sp_providers_find(set, "GMAIL")->key, "gmail");
  assert_string_equal(sp_providers_find(set, "office365")->key, "microsoft365");
  assert_string_equal(sp_providers_find(set, "sendinblue")->key, "brevo");
  assert_null(sp_providers_find(set, "nosuch"));
  assert_null(sp_providers_find(set, NULL));
}

/* Host names, patterns ("*" is one label) and domains. */
static void test_owner(void **state) {
  (void)state;
  const struct sp_provider_set *set = table();
  assert_string_equal(sp_providers_owner(set, "smtp.gmail.com")->key, "gmail");
  assert_string_equal(sp_providers_owner(set, "SMTP.GMAIL.COM.")->key, "gmail");
  assert_string_equal(sp_providers_owner(set, "smtp-relay.gmail.com")->key,
                      "google-relay");
  assert_string_equal(
      sp_providers_owner(set, "email-smtp.eu-west-1.amazonaws.com")->key,
      "ses");
  assert_null(sp_providers_owner(set, "email-smtp.a.b.amazonaws.com"));
  assert_null(sp_providers_owner(set, "email-smtp..amazonaws.com"));
  assert_null(sp_providers_owner(set, "ec2-1-2-3-4.compute.amazonaws.com"));
  assert_string_equal(sp_providers_owner(set, "o1.ptr.sendgrid.net")->key,
                      "sendgrid");
  assert_null(sp_providers_owner(set, "notsendgrid.net"));
  assert_null(sp_providers_owner(set, "mail.example.org"));
}

/* The host check's three answers. */
static void test_host_check(void **state) {
  (void)state;
  const struct sp_provider_set *set = table();
  const struct sp_provider *gmail = sp_providers_find(set, "gmail");
  char why[256];
  assert_int_equal(
      sp_provider_host_check(set, gmail, "smtp.gmail.com", why, sizeof(why)),
      0);
  assert_string_equal(why, "");
  assert_int_equal(
      sp_provider_host_check(set, gmail, "smtp.sendgrid.net", why, sizeof(why)),
      1);
  assert_non_null(strstr(why, "is SendGrid's, not Gmail's"));
  assert_int_equal(sp_provider_host_check(set, gmail, "smtp-relay.gmail.com",
                                          why, sizeof(why)),
                   1);
  assert_non_null(strstr(why, "Google Workspace SMTP relay's, not Gmail's"));
  assert_int_equal(
      sp_provider_host_check(set, gmail, "mail.example.org", why, sizeof(why)),
      1);
  assert_non_null(strstr(why, "not one of Gmail's hosts (smtp.gmail.com"));
}

/* What the parser refuses, each with a line. */
static void test_parse_errors(void **state) {
  (void)state;
  static const struct {
    const char *text; /* the file */
    const char *want; /* in the message */
  } cases[] = {
      {"[1, 2]", "expected a mapping"},
      {"other: 1", "unknown key \"other\""},
      {"providers: []", "must map provider names"},
      {"providers:\n  a:\n    name: A\n", "are needed"},
      {"providers:\n  'a b':\n    name: A\n", "must be a name"},
      {"providers:\n  a: {name: A, host: h, source: s, as_of: x, ports: "
       "{587: {tls: bogus}}}\n",
       "bad value for tls"},
      {"providers:\n  a: {name: A, host: h, source: s, as_of: x, ports: "
       "{587: {}}, color: red}\n",
       "unknown key \"color\""},
      {"providers:\n  a: {name: A, host: 'h h', source: s, as_of: x, ports: "
       "{587: {}}}\n",
       "not a host name"},
      {"providers:\n  a: {name: A, host: h, source: s, as_of: x, hosts: "
       "[a, 'b c'], ports: {587: {}}}\n",
       "hosts: not a name"},
      {"providers:\n  a: {name: A, host: h, source: s, as_of: x, ports: "
       "{587: {}}}\n  A: {name: A, host: h, source: s, as_of: x, ports: "
       "{587: {}}}\n",
       "given twice"},
      {"providers: {a: [", "line"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char err[256] = "";
    struct sp_provider_set *set = sp_providers_parse(
        cases[i].text, strlen(cases[i].text), "t.yml", err, sizeof(err));
    if (set)
      fail_msg("case %zu parsed", i);
    if (!strstr(err, cases[i].want) || !strstr(err, "t.yml"))
      fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
  }
}

/* The option: host when none is given, the ports with their modes; a -H
 * host stays; a port given before gets the documented mode. */
static void test_request_set(void **state) {
  (void)state;
  struct sp_request req;
  char err[256];
  sp_request_init(&req);
  assert_int_equal(sp_request_set(&req, "provider", "gmail", err, sizeof(err)),
                   0);
  assert_string_equal(req.host, "smtp.gmail.com");
  assert_string_equal(req.provider, "gmail");
  assert_int_equal(req.nports, 2);
  assert_int_equal(req.ports[0].port, 587);
  assert_int_equal(req.ports[0].tls_mode, SP_TLS_STARTTLS);
  assert_int_equal(req.ports[1].port, 465);
  assert_int_equal(req.ports[1].tls_mode, SP_TLS_IMPLICIT);

  sp_request_init(&req);
  assert_int_equal(sp_request_set(&req, "host", "relay.example", err, 256), 0);
  assert_int_equal(sp_request_set(&req, "ports", "465", err, 256), 0);
  assert_int_equal(sp_request_set(&req, "provider", "Fastmail", err, 256), 0);
  assert_string_equal(req.host, "relay.example");
  assert_string_equal(req.provider, "fastmail");
  assert_int_equal(req.nports, 2);
  assert_int_equal(req.ports[0].tls_mode, SP_TLS_IMPLICIT);

  assert_int_equal(sp_request_set(&req, "provider", "nosuch", err, 256), -1);
  assert_non_null(strstr(err, "not a known provider"));
  assert_int_equal(sp_request_set(&req, "provider", "a b", err, 256), -1);
  assert_non_null(strstr(err, "is not a name"));
  assert_non_null(sp_option_find("provider"));
}

/* A made-up result for a port of host. */
static void result(struct sp_result *r, uint16_t port, bool implicit) {
  memset(r, 0, sizeof(*r));
  r->port = port;
  r->role = sp_role_for_port(port);
  r->code = SP_OK;
  r->state = SP_STATE_OK;
  r->tls = true;
  r->implicit_tls = implicit;
  snprintf(r->tls_version, sizeof(r->tls_version), "TLSv1.3");
  r->caps_plain.seen = !implicit;
  r->caps_plain.flags = implicit ? 0 : SP_CAP_STARTTLS;
  r->caps_tls.seen = true;
  r->caps_tls.flags = SP_CAP_AUTH;
  snprintf(r->caps_tls.auth_mechs, sizeof(r->caps_tls.auth_mechs), "PLAIN");
}

/* The batch check: conforming ports stay ok, a deviating one names the
 * provider, another provider's host marks every result. */
static void test_check_batch(void **state) {
  (void)state;
  struct sp_result res[2];
  struct sp_batch batch = {.results = res, .nresults = 2, .dns_s = -1};
  result(&res[0], 587, false);
  result(&res[1], 465, true);
  sp_provider_check_batch("gmail", "smtp.gmail.com", &batch);
  assert_int_equal(res[0].code, SP_OK);
  assert_int_equal(res[1].code, SP_OK);

  result(&res[0], 587, false);
  result(&res[1], 465, false); /* 465 speaks STARTTLS */
  sp_provider_check_batch("gmail", "smtp.gmail.com", &batch);
  assert_int_equal(res[0].code, SP_OK);
  assert_int_equal(res[1].code, SP_POLICY_VIOLATION);
  assert_non_null(strstr(res[1].detail, "Gmail"));
  assert_non_null(strstr(res[1].detail, "implicit TLS expected"));

  result(&res[0], 587, false);
  result(&res[1], 465, true);
  sp_provider_check_batch("gmail", "smtp.sendgrid.net", &batch);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(res[i].code, SP_POLICY_VIOLATION);
    assert_non_null(strstr(res[i].detail, "is SendGrid's, not Gmail's"));
  }

  result(&res[0], 587, false);
  result(&res[1], 465, true);
  sp_provider_check_batch("gmail", "127.0.0.1", &batch); /* no name: no check */
  assert_int_equal(res[0].code, SP_OK);
  sp_provider_check_batch("nosuch", "smtp.gmail.com", &batch);
  assert_int_equal(res[0].code, SP_POLICY_VIOLATION);
}

/* Run the tests. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_builtin_rows), cmocka_unit_test(test_find),
      cmocka_unit_test(test_owner),        cmocka_unit_test(test_host_check),
      cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_request_set),
      cmocka_unit_test(test_check_batch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
