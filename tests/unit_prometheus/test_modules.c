/*
 * test_modules.c - YAML module parsing: the shipped sample, every option,
 * durations, and bad inputs with the line numbers their errors name.
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

#include "modules.h"
#include "target.h"

/* Parse text as "t.yml"; err receives the message. */
static struct module_set *parse(const char *text, char *err, size_t errlen) {
  err[0] = '\0';
  return modules_parse(text, strlen(text), "t.yml", err, errlen);
}

/* The shipped sample file loads with the values it states. */
static void test_sample_file(void **state) {
  (void)state;
  char err[512];
  struct module_set *set = modules_load(SAMPLE_YML, err, sizeof(err));
  if (set == NULL)
    fail_msg("%s", err);
  assert_int_equal(set->nmodules, 2);
  const struct module *sub = modules_find(set, "submission");
  assert_non_null(sub);
  assert_int_equal(sub->nports, 2);
  assert_int_equal(sub->ports[0], 587);
  assert_int_equal(sub->ports[1], 465);
  assert_int_equal(sub->tls_mode, SP_TLS_AUTO);
  assert_int_equal(sub->timeout_ms, 5000);
  assert_string_equal(sub->server_name, "mail.example.com");
  const struct module *mx = modules_find(set, "mx");
  assert_non_null(mx);
  assert_int_equal(mx->nports, 1);
  assert_int_equal(mx->ports[0], 25);
  assert_int_equal(mx->role, SP_ROLE_RELAY);
  assert_int_equal(mx->timeout_ms, 10000);
  assert_null(mx->server_name);
  assert_null(modules_find(set, "nope"));
  modules_free(set);
}

/* Every option parses and lands in the request via module_apply. */
static void test_all_options(void **state) {
  (void)state;
  char err[512];
  const char *yml = "modules:\n"
                    "  full:\n"
                    "    ports: [2525]\n"
                    "    tls: starttls\n"
                    "    role: submission\n"
                    "    server_name: mail.smtp-probe.test\n"
                    "    ca_file: " SAMPLE_YML "\n"
                    "    insecure_skip_verify: true\n"
                    "    ehlo: probe.example\n"
                    "    ip_protocol: ip6\n"
                    "    all_addresses: true\n"
                    "    source_ip_address: \"::1\"\n"
                    "    timeout: 1m30s\n"
                    "    banner_wait: 500ms\n"
                    "    dns_server: 127.0.10.53:5300\n"
                    "    cert_warning_days: 21\n"
                    "    cert_critical_days: 7\n"
                    "  bare:\n"
                    "  empty: {}\n";
  struct module_set *set = parse(yml, err, sizeof(err));
  if (set == NULL)
    fail_msg("%s", err);
  assert_int_equal(set->nmodules, 3);
  const struct module *m = modules_find(set, "full");
  assert_int_equal(m->line, 2);
  assert_int_equal(m->tls_mode, SP_TLS_STARTTLS);
  assert_int_equal(m->role, SP_ROLE_SUBMISSION);
  assert_int_equal(m->family, SP_FAMILY_IPV6);
  assert_true(m->insecure_skip_verify);
  assert_true(m->all_addresses);
  assert_int_equal(m->timeout_ms, 90000);
  assert_int_equal(m->banner_wait_ms, 500);
  assert_int_equal(m->cert_warning_days, 21);
  assert_int_equal(m->cert_critical_days, 7);

  struct sp_request req;
  sp_request_init(&req);
  module_apply(m, &req);
  assert_string_equal(req.sni, "mail.smtp-probe.test");
  assert_string_equal(req.cafile, SAMPLE_YML);
  assert_true(req.no_verify);
  assert_string_equal(req.ehlo_name, "probe.example");
  assert_int_equal(req.family, SP_FAMILY_IPV6);
  assert_true(req.all_addresses);
  assert_string_equal(req.source, "::1");
  assert_true(req.timeout_s == 90.0);
  assert_true(req.banner_wait_s == 0.5);
  assert_string_equal(req.dns_server, "127.0.10.53:5300");
  assert_int_equal(req.cert_warn_days, 21);
  assert_int_equal(req.cert_crit_days, 7);

  const struct module *bare = modules_find(set, "bare");
  assert_non_null(bare);
  assert_int_equal(bare->nports, 0);
  assert_int_equal(bare->timeout_ms, MOD_DEFAULT_TIMEOUT_MS);
  assert_int_equal(bare->tls_mode, SP_TLS_AUTO);
  assert_non_null(modules_find(set, "empty"));
  modules_free(set);
}

/* Prometheus durations. */
static void test_durations(void **state) {
  (void)state;
  assert_int_equal(modules_parse_duration("5s"), 5000);
  assert_int_equal(modules_parse_duration("1m30s"), 90000);
  assert_int_equal(modules_parse_duration("500ms"), 500);
  assert_int_equal(modules_parse_duration("1s500ms"), 1500);
  assert_int_equal(modules_parse_duration("2m"), 120000);
  assert_int_equal(modules_parse_duration("1h"), 3600000);
  assert_int_equal(modules_parse_duration("1d"), 86400000);
  assert_int_equal(modules_parse_duration("0"), 0);
  assert_int_equal(modules_parse_duration("0s"), 0);
  const char *bad[] = {"",    "5",  "s",    "1s1m",        "1.5s",
                       "-1s", "5S", "1m1m", "5 s",         " 5s",
                       "5s ", "ms", "1msm", "9999999999s", "1ms5s"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (modules_parse_duration(bad[i]) != -1)
      fail_msg("duration \"%s\" accepted", bad[i]);
  char buf[32];
  modules_format_duration(90000, buf, sizeof(buf));
  assert_string_equal(buf, "1m30s");
  modules_format_duration(1500, buf, sizeof(buf));
  assert_string_equal(buf, "1s500ms");
  modules_format_duration(0, buf, sizeof(buf));
  assert_string_equal(buf, "0s");
}

/* One bad input: the YAML, and what its error must contain. */
struct bad_case {
  const char *yml;   /* the file */
  const char *where; /* "t.yml:LINE:" prefix expected */
  const char *what;  /* a word the message must hold */
};

/* Bad inputs are rejected with the line (and a clear word) of the fault. */
static void test_bad_inputs(void **state) {
  (void)state;
  static const struct bad_case cases[] = {
      {"modules:\n  a:\n    ports: [25]\n    bogus: 1\n",
       "t.yml:4:5:", "unknown key \"bogus\""},
      {"modules:\n  a:\n    tls: sometimes\n", "t.yml:3:10:", "tls must be"},
      {"modules:\n  a:\n    role: king\n", "t.yml:3:11:", "role must be"},
      {"modules:\n  a:\n    ports: [0]\n", "t.yml:3:13:", "invalid port"},
      {"modules:\n  a:\n    ports: [70000]\n", "t.yml:3:13:", "invalid port"},
      {"modules:\n  a:\n    ports: [smtp]\n", "t.yml:3:13:", "invalid port"},
      {"modules:\n  a:\n    ports: 25\n", "t.yml:3:12:", "must be a list"},
      {"modules:\n  a:\n    ports: []\n", "t.yml:3:12:", "empty"},
      {"modules:\n  a:\n    ports: [25, 25]\n", "t.yml:3:17:", "twice"},
      {"modules:\n  a:\n    ports: [[25]]\n", "t.yml:3:13:", "single value"},
      {"modules:\n  a:\n    ports: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,"
       "17]\n",
       "t.yml:3:", "more than"},
      {"modules:\n  a: {}\n  a: {}\n", "t.yml:3:3:", "defined twice"},
      {"modules:\n  a:\n    tls: none\n    tls: auto\n",
       "t.yml:4:5:", "repeated"},
      {"modules:\n  a:\n    all_addresses: yes\n",
       "t.yml:3:20:", "true or false"},
      {"modules:\n  a:\n    timeout: 5\n", "t.yml:3:14:", "invalid duration"},
      {"modules:\n  a:\n    timeout: 10m\n", "t.yml:2:3:", "at most"},
      {"modules:\n  a:\n    timeout: 0s\n", "t.yml:2:3:", "above 0"},
      {"modules:\n  a:\n    timeout: 2s\n    banner_wait: 2s\n",
       "t.yml:2:3:", "banner_wait"},
      {"modules:\n  a:\n    cert_warning_days: 5\n    cert_critical_days: 9\n",
       "t.yml:2:3:", "cert_critical_days"},
      {"modules:\n  a:\n    cert_warning_days: -1\n", "t.yml:3:24:", "days"},
      {"modules:\n  a:\n    ca_file: /nonexistent/ca.pem\n",
       "t.yml:2:3:", "ca_file"},
      {"modules:\n  a:\n    ip_protocol: ip5\n", "t.yml:3:18:", "ip_protocol"},
      {"modules:\n  a:\n    server_name: \"\"\n", "t.yml:3:18:", "server_name"},
      {"modules:\n  a:\n    ehlo: \"a\\nb\"\n", "t.yml:3:11:", "control"},
      {"modules:\n  a:\n    ehlo: \"a\\0b\"\n", "t.yml:3:11:", "NUL"},
      {"modules:\n  a:\n    ehlo: [x]\n", "t.yml:3:11:", "single value"},
      {"modules:\n  \"a b\": {}\n", "t.yml:2:3:", "invalid module name"},
      {"modules:\n  a: 5\n", "t.yml:2:6:", "mapping"},
      {"moduls:\n  a: {}\n", "t.yml:1:1:", "unknown top-level key"},
      {"modules:\n  a: {}\nextra: 1\n", "t.yml:3:1:", "unknown top-level"},
      {"modules: {}\n", "t.yml:1:10:", "at least one"},
      {"modules:\n", "t.yml:1:9:", "at least one"},
      {"- a\n- b\n", "t.yml:1:1:", "mapping"},
      {"", "t.yml:", "empty"},
      {"# only a comment\n", "t.yml:", "empty"},
      {"modules:\n  a:\n    ports: [25\n", "t.yml:", "YAML error"},
      {"modules:\n  a:\n   ports: [25]\n    tls: auto\n", "t.yml:4:", "YAML"},
      {"modules:\n  a: {}\n---\nmodules:\n  b: {}\n",
       "t.yml:3:", "one YAML document"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char err[512];
    struct module_set *set = parse(cases[i].yml, err, sizeof(err));
    if (set != NULL) {
      modules_free(set);
      fail_msg("case %zu accepted:\n%s", i, cases[i].yml);
    }
    if (strncmp(err, cases[i].where, strlen(cases[i].where)) != 0 ||
        strstr(err, cases[i].what) == NULL)
      fail_msg("case %zu: got \"%s\", want prefix \"%s\" and \"%s\"", i, err,
               cases[i].where, cases[i].what);
  }
}

/* A missing file is an error naming it. */
static void test_missing_file(void **state) {
  (void)state;
  char err[512];
  assert_null(modules_load("/nonexistent/smtp_exporter.yml", err, sizeof(err)));
  assert_non_null(strstr(err, "/nonexistent/smtp_exporter.yml"));
  assert_null(modules_load("/", err, sizeof(err)));
}

/* Write a secret file with the given mode; returns its malloc'd path. */
static char *secret_file(const char *secret, mode_t mode) {
  char *path = strdup("/tmp/smtp-exporter-secret.XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, secret, strlen(secret)), (ssize_t)strlen(secret));
  close(fd);
  assert_int_equal(chmod(path, mode), 0);
  return path;
}

/* AUTH and trial options: the secret is read from its file at load. */
static void test_auth_options(void **state) {
  (void)state;
  char *path = secret_file("s3cret\n", 0600);
  char yml[2048];
  snprintf(yml, sizeof(yml),
           "modules:\n"
           "  auth:\n"
           "    ports: [587]\n"
           "    auth_user: probe@example.org\n"
           "    auth_password_file: %s\n"
           "    auth_mechanism: PLAIN\n"
           "    mail_from: probe@example.org\n"
           "    rcpt_to: postmaster@example.org\n"
           "    check_injection: true\n"
           "    min_tls_version: TLS13\n",
           path);
  char err[512];
  struct module_set *set = parse(yml, err, sizeof(err));
  if (set == NULL)
    fail_msg("%s", err);
  assert_string_equal(set->warning, "");
  const struct module *m = modules_find(set, "auth");
  assert_string_equal(m->auth_secret, "s3cret");
  assert_int_equal(m->min_tls_version, 0x0304);
  struct sp_request req;
  sp_request_init(&req);
  module_apply(m, &req);
  assert_string_equal(req.auth_user, "probe@example.org");
  assert_string_equal(req.auth_secret, "s3cret");
  assert_string_equal(req.auth_mech, "PLAIN");
  assert_string_equal(req.mail_from, "probe@example.org");
  assert_string_equal(req.rcpt_to, "postmaster@example.org");
  assert_true(req.check_injection);
  assert_int_equal(req.min_tls_version, 0x0304);
  modules_free(set);

  /* a secret file others can read loads, with a warning */
  chmod(path, 0644);
  set = parse(yml, err, sizeof(err));
  if (set == NULL)
    fail_msg("%s", err);
  assert_non_null(strstr(set->warning, "chmod 600"));
  modules_free(set);

  /* combinations the loader or the core refuse */
  const char *bad[][2] = {
      {"    auth_user: probe@example.org\n", "needs auth_password_file"},
      {"    auth_password_file: %s\n", "needs auth_user"},
      {"    auth_user: u@x\n    auth_password_file: /nonexistent/pw\n",
       "/nonexistent/pw"},
      {"    auth_user: u@x\n    auth_password_file: %s\n    tls: none\n",
       "without TLS"},
      {"    auth_user: u@x\n    auth_password_file: %s\n"
       "    auth_mechanism: MAGIC\n",
       "auth_mech"},
      {"    rcpt_to: a@b\n", "rcpt_to"},
      {"    min_tls_version: SSL3\n", "min_tls_version must be"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char opts[512];
    snprintf(opts, sizeof(opts), bad[i][0], path);
    snprintf(yml, sizeof(yml), "modules:\n  a:\n    ports: [587]\n%s", opts);
    set = parse(yml, err, sizeof(err));
    if (set != NULL) {
      modules_free(set);
      fail_msg("auth case %zu accepted", i);
    }
    if (strstr(err, bad[i][1]) == NULL)
      fail_msg("auth case %zu: \"%s\" lacks \"%s\"", i, err, bad[i][1]);
    assert_null(strstr(err, "s3cret"));
  }
  unlink(path);
  free(path);
}

/* A module with a port policy: loaded at parse time, its ports used when
 * the module lists none; a bad policy file is an error naming it. */
static void test_policy_option(void **state) {
  (void)state;
  char *pol = secret_file("ports:\n  587:\n    tls: starttls\n"
                          "  2525:\n    state: closed\n",
                          0644);
  char yml[1024];
  snprintf(yml, sizeof(yml), "modules:\n  p:\n    policy_file: %s\n", pol);
  char err[512];
  struct module_set *set = parse(yml, err, sizeof(err));
  if (set == NULL)
    fail_msg("%s", err);
  const struct module *m = modules_find(set, "p");
  assert_non_null(m->policy);
  struct target t = {"127.0.0.1", 0};
  struct sp_request req;
  assert_int_equal(target_request(m, &t, 5, false, &req, err, sizeof(err)), 0);
  assert_int_equal(req.nports, 2);
  assert_int_equal(req.ports[0].port, 587);
  assert_int_equal(req.ports[0].tls_mode, SP_TLS_STARTTLS);
  assert_int_equal(req.ports[1].port, 2525);
  modules_free(set);
  unlink(pol);
  free(pol);

  set = parse("modules:\n  p:\n    policy_file: /nonexistent/policy.yml\n", err,
              sizeof(err));
  assert_null(set);
  assert_non_null(strstr(err, "t.yml:2:3: module \"p\": policy_file:"));
}

/* Run every test of this file. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sample_file),   cmocka_unit_test(test_all_options),
      cmocka_unit_test(test_durations),     cmocka_unit_test(test_bad_inputs),
      cmocka_unit_test(test_missing_file),  cmocka_unit_test(test_auth_options),
      cmocka_unit_test(test_policy_option),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
