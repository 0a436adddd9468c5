/*
 * test_options.c - command line parsing of check_smtp_ports
 * (nagios/options.c): good forms land in the request, bad ones give
 * OPTS_ERROR with a message naming the option; probe option values are
 * refused with the core's own sentence (sp_request_set).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

#define MAX_ARGS 40 /* arguments one test passes at most */

/* Parse a NULL-terminated argument list (argv[0] added). */
static enum opts_action parse(struct check_opts *o, char *err, size_t errlen,
                              const char *const *args) {
  static char store[MAX_ARGS][128];
  static char *argv[MAX_ARGS + 2];
  int argc = 0;

  argv[argc++] = (char *)"check_smtp_ports";
  for (int i = 0; args[i] != NULL && i < MAX_ARGS; i++) {
    snprintf(store[i], sizeof(store[i]), "%s", args[i]);
    argv[argc++] = store[i];
  }
  argv[argc] = NULL;
  return opts_parse(argc, argv, o, err, errlen);
}

/* Expect an error whose message contains want. */
static void expect_error(const char *const *args, const char *want) {
  struct check_opts o;
  char err[256] = "";
  enum opts_action a = parse(&o, err, sizeof(err), args);
  if (a != OPTS_ERROR)
    fail_msg("accepted: %s ...", args[0]);
  if (strstr(err, want) == NULL)
    fail_msg("error '%s' does not mention '%s'", err, want);
}

/* Defaults: ports 587,465, auto TLS, 10 s, CRITICAL on timeout, all. */
static void test_defaults(void **state) {
  (void)state;
  struct check_opts o;
  char err[256];
  const char *args[] = {"-H", "mail.example.test", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), args), OPTS_RUN);
  assert_string_equal(o.req.host, "mail.example.test");
  assert_int_equal(o.req.nports, 2);
  assert_int_equal(o.req.ports[0].port, 587);
  assert_int_equal(o.req.ports[1].port, 465);
  assert_int_equal(o.req.ports[0].tls_mode, SP_TLS_AUTO);
  assert_int_equal(o.req.ports[0].role, SP_ROLE_DEFAULT);
  assert_true(o.req.timeout_s == 10.0);
  assert_int_equal(o.timeout_state, SP_STATE_CRITICAL);
  assert_false(o.require_any);
  assert_int_equal(o.verbose, 0);
  assert_false(o.req.trace);
  assert_int_equal(o.output_cap, OPTS_CAP_DEFAULT);
  assert_false(o.have_warn[SP_PHASE_TOTAL]);
}

/* -p lists, repeats, duplicates collapse; --tls/--role are request-wide
 * (the engine applies them to every port whose own is auto/default). */
static void test_ports(void **state) {
  (void)state;
  struct check_opts o;
  char err[256];
  const char *args[] = {"-H",          "127.0.0.1", "-p",    "25,587",
                        "--port=2525", "-p",        "587",   "--tls",
                        "starttls",    "--role",    "relay", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), args), OPTS_RUN);
  assert_int_equal(o.req.nports, 3);
  assert_int_equal(o.req.ports[0].port, 25);
  assert_int_equal(o.req.ports[1].port, 587);
  assert_int_equal(o.req.ports[2].port, 2525);
  assert_int_equal(o.req.tls_mode, SP_TLS_STARTTLS);
  assert_int_equal(o.req.role, SP_ROLE_RELAY);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(o.req.ports[i].tls_mode, SP_TLS_AUTO);
    assert_int_equal(o.req.ports[i].role, SP_ROLE_DEFAULT);
  }
  /* The core's grammar: empty items and spaces between ports are fine. */
  const char *loose[] = {"-H", "h", "-p", "25,,587", "-p", "2525 465,", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), loose), OPTS_RUN);
  assert_int_equal(o.req.nports, 4);
  assert_int_equal(o.req.ports[3].port, 465);
}

/* The order of --tls/--role and -p does not matter. */
static void test_order(void **state) {
  (void)state;
  struct check_opts a, b;
  char err[256];
  const char *first[] = {"-H",    "h",  "--tls", "implicit", "--role",
                         "relay", "-p", "465",   NULL};
  const char *last[] = {"-H",       "h",      "-p",    "465", "--tls",
                        "implicit", "--role", "relay", NULL};
  assert_int_equal(parse(&a, err, sizeof(err), first), OPTS_RUN);
  struct sp_request req_a;
  memcpy(&req_a, &a.req, sizeof(req_a));
  assert_int_equal(parse(&b, err, sizeof(err), last), OPTS_RUN);
  assert_int_equal(req_a.tls_mode, SP_TLS_IMPLICIT);
  assert_int_equal(b.req.tls_mode, SP_TLS_IMPLICIT);
  assert_int_equal(b.req.role, SP_ROLE_RELAY);
  assert_int_equal(b.req.nports, 1);
  assert_int_equal(b.req.ports[0].port, 465);
  assert_memory_equal(&req_a, &b.req, sizeof(req_a));
}

/* A bad value is refused with "SPELLING: " and the core's sentence. */
static void expect_core_sentence(const char *opt, const char *spelling,
                                 const char *key, const char *value) {
  struct sp_request req;
  char why[200] = "", want[256], err[256] = "";
  sp_request_init(&req);
  assert_int_not_equal(sp_request_set(&req, key, value, why, sizeof(why)), 0);
  snprintf(want, sizeof(want), "%s: %s", spelling, why);
  const char *args[] = {"-H", "h", opt, value, NULL};
  struct check_opts o;
  assert_int_equal(parse(&o, err, sizeof(err), args), OPTS_ERROR);
  assert_string_equal(err, want);
}

/* One wording everywhere: the check's errors are the core's sentences. */
static void test_core_wording(void **state) {
  (void)state;
  struct check_opts o;
  char err[256];
  const char *a1[] = {"-H", "h", "--min-tls", "1.4", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), a1), OPTS_ERROR);
  assert_string_equal(err, "--min-tls: '1.4' is not 1.0, 1.1, 1.2 or 1.3");
  expect_core_sentence("--min-tls", "--min-tls", "min_tls", "TLSv9");
  expect_core_sentence("--tls", "--tls", "tls", "sometimes");
  expect_core_sentence("--role", "--role", "role", "boss");
  expect_core_sentence("-p", "-p/--port", "ports", "0");
  expect_core_sentence("--port", "-p/--port", "ports", "smtp");
  expect_core_sentence("-H", "-H/--hostname", "host", "bad host!");
  expect_core_sentence("--banner-wait", "--banner-wait", "banner_wait", "-1");
  expect_core_sentence("--banner-wait", "--banner-wait", "banner_wait", "2x");
  expect_core_sentence("-t", "-t/--timeout", "timeout", "ten");
  expect_core_sentence("-t", "-t/--timeout", "timeout", "0");
  expect_core_sentence("-D", "-D/--cert-days", "cert_warn_days", "36501");
  expect_core_sentence("--auth-mech", "--auth-mech", "auth_mech", "NTLM");
  expect_core_sentence("--source", "--source", "source", "mail.example");
  expect_core_sentence("--dns-server", "--dns-server", "dns_server", "x:y");
  expect_core_sentence("--mail-from", "--mail-from", "mail_from", "<a@b>");
  expect_core_sentence("--sni", "--sni", "sni", "a b");
  expect_core_sentence("--proxy-protocol", "--proxy-protocol", "proxy_protocol",
                       "v3");
  /* A key file that cannot be opened is refused (the core's check). */
  const char *a2[] = {"-H",
                      "h",
                      "--client-cert",
                      "/nonexistent.pem",
                      "--client-key",
                      "/nonexistent.key",
                      NULL};
  assert_int_equal(parse(&o, err, sizeof(err), a2), OPTS_ERROR);
  assert_non_null(strstr(err, "client"));
}

/* Flags set their key to the fixed value; values are the core's. */
static void test_flags(void **state) {
  (void)state;
  struct check_opts o;
  char err[256];
  const char *args[] = {"-H",
                        "h",
                        "--no-tls-trial",
                        "--check-injection",
                        "--min-tls",
                        "TLSv1.3",
                        "--auth-user",
                        "u@example.test",
                        "--auth-mech",
                        "cram-md5",
                        "--auth-password-env",
                        "SP_TEST_SECRET",
                        "--mail-from",
                        "a@example.test",
                        "--rcpt-to",
                        "b@example.test",
                        "--send",
                        NULL};
  setenv("SP_TEST_SECRET", "s3cret", 1);
  assert_int_equal(parse(&o, err, sizeof(err), args), OPTS_RUN);
  assert_true(o.req.no_tls_trial);
  assert_true(o.req.check_injection);
  assert_int_equal(o.req.min_tls_version, 0x0304);
  assert_string_equal(o.req.auth_mech, "CRAM-MD5");
  assert_string_equal(o.req.auth_secret, "s3cret");
  assert_string_equal(o.req.mail_from, "a@example.test");
  assert_string_equal(o.req.rcpt_to, "b@example.test");
  assert_true(o.req.send_message);
  const char *proxy[] = {"-H", "h", "--proxy-protocol", "v2", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), proxy), OPTS_RUN);
  assert_int_equal(o.req.proxy_protocol, SP_PROXY_V2);
  opts_free(&o);
  unsetenv("SP_TEST_SECRET");
}

/* Sixteen ports fit, seventeen do not. */
static void test_too_many_ports(void **state) {
  (void)state;
  struct check_opts o;
  char err[256];
  const char *ok[] = {
      "-H", "h", "-p", "1,2,3,4,5,6,7,8", "-p", "9,10,11,12,13,14,15,16", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), ok), OPTS_RUN);
  assert_int_equal(o.req.nports, SP_MAX_PORTS);
  const char *bad[] = {
      "-H", "h", "-p", "1,2,3,4,5,6,7,8", "-p", "9,10,11,12,13,14,15,16,17",
      NULL};
  expect_error(bad, "-p/--port: more than 16 ports");
}

/* Bad port lists name -p. */
static void test_bad_ports(void **state) {
  (void)state;
  const char *a1[] = {"-H", "h", "-p", "0", NULL};
  const char *a2[] = {"-H", "h", "-p", "65536", NULL};
  const char *a3[] = {"-H", "h", "-p", ",", NULL};
  const char *a4[] = {"-H", "h", "-p", "smtp", NULL};
  const char *a5[] = {"-H", "h", "-p", "25;587", NULL};
  const char *a6[] = {"-H", "h", "-p", "-25", NULL};
  expect_error(a1, "-p/--port: '0' is not a list of ports 1-65535");
  expect_error(a2, "-p/--port");
  expect_error(a3, "-p/--port: no port given");
  expect_error(a4, "-p/--port");
  expect_error(a5, "-p/--port");
  expect_error(a6, "-p/--port");
}

/* Unknown options, missing arguments, missing -H, stray arguments. */
static void test_bad_options(void **state) {
  (void)state;
  const char *a1[] = {"-H", "h", "--frobnicate", NULL};
  const char *a2[] = {"-H", "h", "-x", NULL};
  const char *a3[] = {"-H", NULL};
  const char *a4[] = {"-p", "25", NULL};
  const char *a5[] = {"-H", "h", "extra", NULL};
  const char *a6[] = {"-H", "h", "--tls", "sometimes", NULL};
  const char *a7[] = {"-H", "h", "--role", "boss", NULL};
  const char *a8[] = {"-H", "h", "--require", "most", NULL};
  const char *a9[] = {"-H", "h", "-w", "fast", NULL};
  const char *a10[] = {"-H", "h", "-c", "3:1", NULL};
  const char *a11[] = {"-H", "h", "--banner-wait", "-1", NULL};
  const char *a12[] = {"-H", "h", "--phase-warn", "nosuch=1", NULL};
  const char *a13[] = {"-H", "bad host!", NULL};
  expect_error(a1, "--frobnicate");
  expect_error(a2, "-x");
  expect_error(a3, "-H");
  expect_error(a4, "-H/--hostname is required");
  expect_error(a5, "extra");
  expect_error(a6, "--tls");
  expect_error(a7, "--role");
  expect_error(a8, "--require");
  expect_error(a9, "-w/--warning");
  expect_error(a10, "-c/--critical");
  expect_error(a11, "--banner-wait");
  expect_error(a12, "--phase-warn");
  expect_error(a13, "host");
}

/* -t SECONDS[:STATE] with names, digits and bad forms. */
static void test_timeout(void **state) {
  (void)state;
  struct check_opts o;
  char err[256];
  const char *a1[] = {"-H", "h", "-t", "2.5", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), a1), OPTS_RUN);
  assert_true(o.req.timeout_s == 2.5);
  assert_int_equal(o.timeout_state, SP_STATE_CRITICAL);
  const char *a2[] = {"-H", "h", "--timeout=30:warning", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), a2), OPTS_RUN);
  assert_true(o.req.timeout_s == 30.0);
  assert_int_equal(o.timeout_state, SP_STATE_WARNING);
  const char *a3[] = {"-H", "h", "-t", "5:3", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), a3), OPTS_RUN);
  assert_int_equal(o.timeout_state, SP_STATE_UNKNOWN);
  const char *a4[] = {"-H", "h", "-t", "5:OK", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), a4), OPTS_RUN);
  assert_int_equal(o.timeout_state, SP_STATE_OK);
  /* Durations as everywhere else, with or without the check's STATE. */
  const char *a5[] = {"-H", "h", "-t", "1m", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), a5), OPTS_RUN);
  assert_true(o.req.timeout_s == 60.0);
  const char *a6[] = {"-H", "h", "-t", "1m30s:WARNING", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), a6), OPTS_RUN);
  assert_true(o.req.timeout_s == 90.0);
  assert_int_equal(o.timeout_state, SP_STATE_WARNING);
  const char *a7[] = {"-H", "h", "-t", "500ms", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), a7), OPTS_RUN);
  assert_true(o.req.timeout_s == 0.5);

  const char *b1[] = {"-H", "h", "-t", "5:FATAL", NULL};
  const char *b2[] = {"-H", "h", "-t", "5:4", NULL};
  const char *b3[] = {"-H", "h", "-t", "0", NULL};
  const char *b4[] = {"-H", "h", "-t", "ten", NULL};
  const char *b5[] = {"-H", "h", "-t", ":CRITICAL", NULL};
  const char *b6[] = {"-H", "h", "-t", "5:", NULL};
  const char *b7[] = {"-H", "h", "-t", "100000", NULL};
  const char *b8[] = {"-H", "h", "-t", "1h1m", NULL};
  expect_error(b1, "-t/--timeout: state 'FATAL' is not OK");
  expect_error(b2, "-t/--timeout");
  expect_error(b3, "-t/--timeout");
  expect_error(b4, "-t/--timeout");
  expect_error(b5, "-t/--timeout");
  expect_error(b6, "-t/--timeout");
  expect_error(b7, "-t/--timeout");
  expect_error(b8, "-t/--timeout: '1h1m' is not a number of seconds 0-3600");
}

/* opts_parse_state: words in any case and digits 0-3. */
static void test_state_words(void **state) {
  (void)state;
  assert_int_equal(opts_parse_state("ok"), 0);
  assert_int_equal(opts_parse_state("Warning"), 1);
  assert_int_equal(opts_parse_state("CRITICAL"), 2);
  assert_int_equal(opts_parse_state("unknown"), 3);
  assert_int_equal(opts_parse_state("2"), 2);
  assert_int_equal(opts_parse_state("4"), -1);
  assert_int_equal(opts_parse_state("22"), -1);
  assert_int_equal(opts_parse_state(""), -1);
  assert_int_equal(opts_parse_state("crit"), -1);
}

/* -D / --cert-days forms. */
static void test_cert_days(void **state) {
  (void)state;
  struct check_opts o;
  char err[256];
  const char *a1[] = {"-H", "h", "-D", "30,14", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), a1), OPTS_RUN);
  assert_int_equal(o.req.cert_warn_days, 30);
  assert_int_equal(o.req.cert_crit_days, 14);
  const char *a2[] = {"-H", "h", "--cert-days=21", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), a2), OPTS_RUN);
  assert_int_equal(o.req.cert_warn_days, 21);
  assert_true(o.req.cert_crit_days <= 21);
  const char *a3[] = {"-H", "h", "-D", "7,7", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), a3), OPTS_RUN);

  const char *b1[] = {"-H", "h", "-D", "14,30", NULL};
  const char *b2[] = {"-H", "h", "-D", "x,1", NULL};
  const char *b3[] = {"-H", "h", "-D", "30,", NULL};
  const char *b4[] = {"-H", "h", "-D", "-2", NULL};
  const char *b5[] = {"-H", "h", "--cert-days", "30,14,7", NULL};
  expect_error(b1, "critical days must not exceed the warning days");
  expect_error(b2, "-D/--cert-days: 'x' is not a whole number 0-36500");
  expect_error(b3, "-D/--cert-days");
  expect_error(b4, "-D/--cert-days");
  expect_error(b5, "-D/--cert-days");
}

/* -w/-c/--phase-* thresholds, -v levels, the other request fields. */
static void test_thresholds_and_flags(void **state) {
  (void)state;
  struct check_opts o;
  char err[256];
  const char *args[] = {"-H",
                        "::1",
                        "-w",
                        "1.5",
                        "--critical",
                        "@0:0.001",
                        "--phase-warn",
                        "tls_handshake=0.5",
                        "--phase-crit",
                        "connect=~:2",
                        "-6",
                        "--no-verify",
                        "--sni",
                        "mail.example.test",
                        "--ehlo",
                        "probe.example.test",
                        "--source",
                        "::1",
                        "--require",
                        "any",
                        "--all-addresses",
                        "--banner-wait",
                        "1.5",
                        "--dns-server",
                        "127.0.10.53:5300",
                        "-vv",
                        NULL};
  assert_int_equal(parse(&o, err, sizeof(err), args), OPTS_RUN);
  assert_true(o.have_warn[SP_PHASE_TOTAL]);
  assert_string_equal(o.warn[SP_PHASE_TOTAL].text, "1.5");
  assert_true(o.have_crit[SP_PHASE_TOTAL]);
  assert_true(o.crit[SP_PHASE_TOTAL].inside);
  assert_true(o.have_warn[SP_PHASE_TLS_HANDSHAKE]);
  assert_true(o.have_crit[SP_PHASE_CONNECT]);
  assert_true(o.crit[SP_PHASE_CONNECT].start_inf);
  assert_false(o.have_warn[SP_PHASE_CONNECT]);
  assert_int_equal(o.req.family, SP_FAMILY_IPV6);
  assert_true(o.req.no_verify);
  assert_string_equal(o.req.sni, "mail.example.test");
  assert_string_equal(o.req.ehlo_name, "probe.example.test");
  assert_string_equal(o.req.source, "::1");
  assert_true(o.require_any);
  assert_true(o.req.all_addresses);
  assert_true(o.req.banner_wait_s == 1.5);
  assert_string_equal(o.req.dns_server, "127.0.10.53:5300");
  assert_int_equal(o.verbose, 2);
  assert_false(o.req.trace);
  assert_true(o.output_cap > OPTS_CAP_DEFAULT);

  const char *v3[] = {"-H", "h", "-vvvv", "-4", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), v3), OPTS_RUN);
  assert_int_equal(o.verbose, 3);
  assert_true(o.req.trace);
  assert_int_equal(o.req.family, SP_FAMILY_IPV4);
}

/* -h and -V win over everything else, even bad values later on. */
static void test_help_version(void **state) {
  (void)state;
  struct check_opts o;
  char err[256];
  const char *a1[] = {"--help", NULL};
  const char *a2[] = {"-V", NULL};
  const char *a3[] = {"-V", "-h", NULL};
  assert_int_equal(parse(&o, err, sizeof(err), a1), OPTS_HELP);
  assert_int_equal(parse(&o, err, sizeof(err), a2), OPTS_VERSION);
  assert_int_equal(parse(&o, err, sizeof(err), a3), OPTS_HELP);
  assert_non_null(strstr(opts_help(), "--cert-days"));
  assert_non_null(strstr(opts_help(), "Usage: check_smtp_ports"));
  assert_null(strstr(opts_help(), "%USAGE%"));
  assert_non_null(strstr(opts_usage(), "-H HOST"));
}

/* Run this file's tests. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_ports),
      cmocka_unit_test(test_order),
      cmocka_unit_test(test_core_wording),
      cmocka_unit_test(test_flags),
      cmocka_unit_test(test_too_many_ports),
      cmocka_unit_test(test_bad_ports),
      cmocka_unit_test(test_bad_options),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_state_words),
      cmocka_unit_test(test_cert_days),
      cmocka_unit_test(test_thresholds_and_flags),
      cmocka_unit_test(test_help_version),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
