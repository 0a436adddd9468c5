/*
 * test_output.c - states, perfdata and output assembly of check_smtp_ports
 * (nagios/output.c) on fabricated results: no network.
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
#include "output.h"

#define NOW ((time_t)1800000000) /* a fixed "now" for certificate days */
#define DAY 86400

/* Parse a NULL-terminated argument list into o, failing on error. */
static void opts(struct check_opts *o, const char *const *args) {
  static char store[32][128];
  static char *argv[34];
  char err[256];
  int argc = 0;

  argv[argc++] = (char *)"check_smtp_ports";
  for (int i = 0; args[i] != NULL && i < 32; i++) {
    snprintf(store[i], sizeof(store[i]), "%s", args[i]);
    argv[argc++] = store[i];
  }
  argv[argc] = NULL;
  if (opts_parse(argc, argv, o, err, sizeof(err)) != OPTS_RUN)
    fail_msg("options rejected: %s", err);
}

/* A fabricated result: port, code, state, total seconds. */
static struct sp_result make(uint16_t port, enum sp_code code,
                             enum sp_state state, double total) {
  struct sp_result r;
  memset(&r, 0, sizeof(r));
  snprintf(r.host, sizeof(r.host), "mail.example.test");
  r.port = port;
  r.role = sp_role_for_port(port);
  r.code = code;
  r.state = state;
  r.phase_s[SP_PHASE_CONNECT] = 0.001;
  r.phase_done[SP_PHASE_CONNECT] = true;
  r.phase_s[SP_PHASE_TOTAL] = total;
  r.phase_done[SP_PHASE_TOTAL] = true;
  snprintf(r.address, sizeof(r.address), "127.0.0.1");
  return r;
}

/* Build the output, check it is non-NULL, return it (caller frees). */
static char *build(const struct check_opts *o, const struct sp_result *r, int n,
                   enum sp_state *st) {
  char *text = output_build(o, r, n, NULL, NOW, st);
  assert_non_null(text);
  return text;
}

/* Expect needle inside haystack. */
static void has(const char *hay, const char *needle) {
  if (strstr(hay, needle) == NULL)
    fail_msg("'%s' not found in:\n%s", needle, hay);
}

/* Label quoting: quotes doubled, '=' replaced, spaces kept. */
static void test_label_quoting(void **state) {
  (void)state;
  char buf[64];
  assert_int_equal(perf_quote_label("587_total", buf, sizeof(buf)), 11);
  assert_string_equal(buf, "'587_total'");
  perf_quote_label("it's", buf, sizeof(buf));
  assert_string_equal(buf, "'it''s'");
  perf_quote_label("a=b c", buf, sizeof(buf));
  assert_string_equal(buf, "'a_b c'");
  perf_quote_label("x|y\n", buf, sizeof(buf));
  assert_string_equal(buf, "'x_y_'");
  /* Truncation keeps the closing quote and never splits a doubled quote. */
  perf_quote_label("abcdef", buf, 6);
  assert_string_equal(buf, "'abc'");
  perf_quote_label("ab'cd", buf, 6);
  assert_string_equal(buf, "'ab'");
  perf_quote_label("abc", buf, 2);
  assert_string_equal(buf, "");
}

/* Numbers are fixed point, never an exponent; non-finite is U. */
static void test_number_format(void **state) {
  (void)state;
  char buf[64];
  perf_format_number(0.0041, buf, sizeof(buf));
  assert_string_equal(buf, "0.004100");
  perf_format_number(1e-7, buf, sizeof(buf));
  assert_string_equal(buf, "0.000000");
  perf_format_number(12345678.5, buf, sizeof(buf));
  assert_string_equal(buf, "12345678.500000");
  perf_format_number(-3.25, buf, sizeof(buf));
  assert_string_equal(buf, "-3.250000");
  perf_format_number(1.0 / 0.0, buf, sizeof(buf));
  assert_string_equal(buf, "U");
  assert_null(strchr(buf, 'e'));
}

/* --require all: the worst wins; any: one OK is enough. */
static void test_aggregate(void **state) {
  (void)state;
  struct check_eval ev[3] = {
      {SP_STATE_OK, ""}, {SP_STATE_WARNING, ""}, {SP_STATE_CRITICAL, ""}};
  assert_int_equal(eval_aggregate(ev, 3, false), SP_STATE_CRITICAL);
  assert_int_equal(eval_aggregate(ev, 3, true), SP_STATE_OK);
  assert_int_equal(eval_aggregate(ev + 1, 2, true), SP_STATE_CRITICAL);
  assert_int_equal(eval_aggregate(ev, 2, false), SP_STATE_WARNING);
  assert_int_equal(eval_aggregate(ev, 0, false), SP_STATE_UNKNOWN);
  struct check_eval ev2[2] = {{SP_STATE_UNKNOWN, ""}, {SP_STATE_WARNING, ""}};
  assert_int_equal(eval_aggregate(ev2, 2, false), SP_STATE_WARNING);
  assert_int_equal(eval_aggregate(ev2, 1, false), SP_STATE_UNKNOWN);
  assert_int_equal(state_worse(SP_STATE_UNKNOWN, SP_STATE_CRITICAL),
                   SP_STATE_CRITICAL);
  assert_int_equal(state_worse(SP_STATE_OK, SP_STATE_UNKNOWN),
                   SP_STATE_UNKNOWN);
}

/* -t STATE replaces the state of timeout codes only. */
static void test_timeout_remap(void **state) {
  (void)state;
  struct check_opts o;
  struct check_eval ev;
  const char *args[] = {"-H", "h", "-t", "5:WARNING", NULL};
  opts(&o, args);
  struct sp_result to = make(587, SP_CONNECT_TIMEOUT, SP_STATE_CRITICAL, 5.0);
  assert_true(sp_code_is_timeout(SP_CONNECT_TIMEOUT));
  eval_result(&o, &to, &ev);
  assert_int_equal(ev.state, SP_STATE_WARNING);
  struct sp_result ref = make(587, SP_CONNECT_REFUSED, SP_STATE_CRITICAL, 0.1);
  assert_false(sp_code_is_timeout(SP_CONNECT_REFUSED));
  eval_result(&o, &ref, &ev);
  assert_int_equal(ev.state, SP_STATE_CRITICAL);
  const char *ok_args[] = {"-H", "h", "-t", "5:0", NULL};
  opts(&o, ok_args);
  struct sp_result dns = make(587, SP_DNS_ERROR, SP_STATE_CRITICAL, 0.2);
  eval_result(&o, &dns, &ev);
  assert_int_equal(ev.state, SP_STATE_OK);
  /* The whole run: the timed-out port shows its code under SMTP OK. */
  enum sp_state st;
  char *text = build(&o, &dns, 1, &st);
  assert_int_equal(st, SP_STATE_OK);
  assert_true(strncmp(text, "SMTP OK - 587 dns_error", 23) == 0);
  free(text);
}

/* Response time thresholds: critical before warning, inclusive bounds,
 * only for results whose code is ok; the code stays ok in the text. */
static void test_thresholds(void **state) {
  (void)state;
  struct check_opts o;
  struct check_eval ev;
  const char *args[] = {"-H", "h", "-w", "1", "-c", "2", NULL};
  opts(&o, args);
  struct sp_result r = make(587, SP_OK, SP_STATE_OK, 1.0);
  eval_result(&o, &r, &ev);
  assert_int_equal(ev.state, SP_STATE_OK);
  assert_string_equal(ev.why, "");
  r.phase_s[SP_PHASE_TOTAL] = 1.52;
  eval_result(&o, &r, &ev);
  assert_int_equal(ev.state, SP_STATE_WARNING);
  assert_string_equal(ev.why, "response time 1.520s > 1");
  r.phase_s[SP_PHASE_TOTAL] = 2.0;
  eval_result(&o, &r, &ev);
  assert_int_equal(ev.state, SP_STATE_WARNING);
  r.phase_s[SP_PHASE_TOTAL] = 2.5;
  eval_result(&o, &r, &ev);
  assert_int_equal(ev.state, SP_STATE_CRITICAL);
  assert_string_equal(ev.why, "response time 2.500s > 2");

  enum sp_state st;
  char *text = build(&o, &r, 1, &st);
  assert_int_equal(st, SP_STATE_CRITICAL);
  has(text, "SMTP CRITICAL - 587 ok, response time 2.500s > 2 | ");
  has(text, "'587_total'=2.500000s;1;2;0");
  free(text);

  /* A failing code keeps its own state; thresholds do not apply. */
  struct sp_result w = make(587, SP_CERT_EXPIRING, SP_STATE_WARNING, 9.0);
  eval_result(&o, &w, &ev);
  assert_int_equal(ev.state, SP_STATE_WARNING);
  assert_string_equal(ev.why, "");

  /* Per-phase thresholds. */
  const char *pargs[] = {"-H", "h", "--phase-crit", "connect=0.0005", NULL};
  opts(&o, pargs);
  r = make(465, SP_OK, SP_STATE_OK, 0.01);
  eval_result(&o, &r, &ev);
  assert_int_equal(ev.state, SP_STATE_CRITICAL);
  assert_string_equal(ev.why, "connect 0.001s > 0.0005");
}

/* The first line: worst first, codes literal with hints, ok ports with
 * their time, then " | " and perfdata. */
static void test_first_line(void **state) {
  (void)state;
  struct check_opts o;
  const char *args[] = {"-H", "mail.example.test", NULL};
  opts(&o, args);
  struct sp_result r[2];
  r[0] = make(587, SP_OK, SP_STATE_OK, 0.012);
  r[0].phase_s[SP_PHASE_TLS_HANDSHAKE] = 0.0041;
  r[0].phase_done[SP_PHASE_TLS_HANDSHAKE] = true;
  r[1] = make(465, SP_TLS_MODE_MISMATCH, SP_STATE_CRITICAL, 0.2);
  snprintf(r[1].detail, sizeof(r[1].detail), "greeting came | in plaintext");
  char hint[512];
  sp_result_hint(&r[1], hint, sizeof(hint));
  for (char *p = hint; *p; p++)
    if (*p == '|')
      *p = '/';
  char want[700];
  snprintf(want, sizeof(want),
           "SMTP CRITICAL - 465 tls_mode_mismatch: %s; 587 ok 0.012s | ", hint);

  enum sp_state st;
  char *text = build(&o, r, 2, &st);
  assert_int_equal(st, SP_STATE_CRITICAL);
  assert_true(strncmp(text, want, strlen(want)) == 0);
  /* Exactly one '|' on the first line, and the output is one line. */
  char *nl = strchr(text, '\n');
  assert_non_null(nl);
  assert_int_equal(nl[1], '\0');
  assert_ptr_equal(strchr(text, '|'), strrchr(text, '|'));
  has(text, "'587_connect'=0.001000s;;;0 ");
  has(text, "'587_tls_handshake'=0.004100s;;;0 ");
  has(text, "'587_total'=0.012000s;;;0 ");
  has(text, "'465_total'=0.200000s;;;0\n");
  assert_null(strstr(text, "587_banner"));
  assert_null(strstr(text, "cert_days"));
  free(text);
}

/* Certificate days: earliest not-after, negative once expired, the -D
 * thresholds as "W:;C:". */
static void test_cert_days_perf(void **state) {
  (void)state;
  struct check_opts o;
  const char *args[] = {"-H", "h", "-D", "30,14", NULL};
  opts(&o, args);
  struct sp_result r[2];
  static struct sp_cert certs[3]; /* the results' certs[] (zeroed) */
  r[0] = make(465, SP_OK, SP_STATE_OK, 0.01);
  r[0].certs = certs;
  r[0].ncerts = 2;
  r[0].leaf_not_after = NOW + 300 * DAY + 5;
  r[0].chain_not_after = NOW + 300 * DAY + 5;
  r[1] = make(587, SP_CERT_EXPIRED, SP_STATE_CRITICAL, 0.01);
  r[1].certs = certs + 2;
  r[1].ncerts = 1;
  r[1].leaf_not_after = NOW - 3 * DAY - 5;
  r[1].chain_not_after = NOW - 3 * DAY - 5;
  enum sp_state st;
  char *text = build(&o, r, 2, &st);
  assert_int_equal(st, SP_STATE_CRITICAL);
  has(text, "'465_cert_days'=300;30:;14:");
  char want[64];
  snprintf(want, sizeof(want), "'587_cert_days'=%ld;30:;14:",
           sp_days_left(r[1].chain_not_after, NOW));
  has(text, want);
  assert_true(sp_days_left(r[1].chain_not_after, NOW) < 0);
  has(text, "587 cert_expired");
  free(text);

  /* Without -D the threshold fields stay empty. */
  const char *plain[] = {"-H", "h", NULL};
  opts(&o, plain);
  text = build(&o, r, 1, &st);
  has(text, "'465_cert_days'=300;;\n");
  free(text);
}

/* --all-addresses: labels carry the address; IPv6 in brackets in text. */
static void test_all_addresses(void **state) {
  (void)state;
  struct check_opts o;
  const char *args[] = {"-H", "h", "--all-addresses", "-c", "~:3", NULL};
  opts(&o, args);
  struct sp_result r[2];
  r[0] = make(587, SP_OK, SP_STATE_OK, 0.02);
  r[0].per_address = true;
  r[1] = make(587, SP_CONNECT_REFUSED, SP_STATE_CRITICAL, 0.01);
  r[1].per_address = true;
  snprintf(r[1].address, sizeof(r[1].address), "2001:db8::1");
  enum sp_state st;
  char *text = build(&o, r, 2, &st);
  has(text, "SMTP CRITICAL - 587@[2001:db8::1] connect_refused");
  has(text, "; 587@127.0.0.1 ok 0.020s | ");
  has(text, "'587_127.0.0.1_total'=0.020000s;;~:3;0");
  has(text, "'587_2001:db8::1_connect'=0.001000s;;;0");
  free(text);
}

/* --require any: one OK port makes the run OK, the bad one still shows. */
static void test_require_any_output(void **state) {
  (void)state;
  struct check_opts o;
  const char *args[] = {"-H", "h", "-p", "587,2525", "--require", "any", NULL};
  opts(&o, args);
  struct sp_result r[2];
  r[0] = make(587, SP_CONNECT_REFUSED, SP_STATE_CRITICAL, 0.01);
  r[1] = make(2525, SP_OK, SP_STATE_OK, 0.02);
  enum sp_state st;
  char *text = build(&o, r, 2, &st);
  assert_int_equal(st, SP_STATE_OK);
  has(text, "SMTP OK - 587 connect_refused");
  free(text);
}

/* Long output: one block per result at -v; none at -v0; '|' in server
 * text never reaches the output. */
static void test_long_output(void **state) {
  (void)state;
  struct check_opts o;
  const char *quiet[] = {"-H", "h", NULL};
  const char *loud[] = {"-H", "h", "-v", NULL};
  struct sp_result r[2];
  r[0] = make(587, SP_REJECTED, SP_STATE_CRITICAL, 0.01);
  snprintf(r[0].detail, sizeof(r[0].detail), "554 go | away\x01");
  r[1] = make(465, SP_OK, SP_STATE_OK, 0.02);
  enum sp_state st;

  opts(&o, quiet);
  char *text = build(&o, r, 2, &st);
  assert_ptr_equal(strchr(text, '\n') + 1, text + strlen(text));
  free(text);

  opts(&o, loud);
  text = build(&o, r, 2, &st);
  char *nl = strchr(text, '\n');
  assert_non_null(nl);
  assert_true(strlen(nl + 1) > 0);
  has(nl + 1, "587 submission: CRITICAL rejected\n");
  has(nl + 1, "465 implicit: OK ok\n");
  /* One '|' in the whole output: the perfdata separator. */
  assert_ptr_equal(strchr(text, '|'), strrchr(text, '|'));
  assert_true(strchr(text, '|') < nl);
  assert_null(strchr(text, '\x01'));
  free(text);
}

/* -vvv prints the dialogue, indented, sanitised. */
static void test_transcript(void **state) {
  (void)state;
  struct check_opts o;
  const char *args[] = {"-H", "h", "-vvv", NULL};
  opts(&o, args);
  struct sp_result r = make(587, SP_OK, SP_STATE_OK, 0.01);
  char dialogue[] = "S: 220 mail ESMTP\nC: EHLO probe\nS: 250 a|b\n";
  r.transcript = dialogue;
  r.transcript_len = strlen(dialogue);
  enum sp_state st;
  char *text = build(&o, &r, 1, &st);
  has(text, "  dialogue:\n    S: 220 mail ESMTP\n    C: EHLO probe\n");
  has(text, "    S: 250 a/b\n");
  free(text);
}

/* The 8 KiB cap: long output is cut at a line with a note, perfdata stays
 * whole; the -vvv cap lets it all through; a huge summary gives way to
 * perfdata. */
static void test_output_cap(void **state) {
  (void)state;
  struct check_opts o;
  const char *args[] = {"-H", "h", "-vvv", NULL};
  static char dialogue[2048];
  static struct sp_cert certs[SP_MAX_PORTS]; /* one each (zeroed) */
  struct sp_result r[SP_MAX_PORTS];
  enum sp_state st;

  for (size_t i = 0; i + 20 < sizeof(dialogue); i += 20)
    memcpy(dialogue + i, "S: 250-xxxxxxxxxxxx\n", 20);
  for (int i = 0; i < SP_MAX_PORTS; i++) {
    r[i] = make((uint16_t)(1000 + i), SP_REJECTED, SP_STATE_CRITICAL, 0.5);
    r[i].certs = &certs[i];
    r[i].ncerts = 1;
    r[i].chain_not_after = NOW + 10 * DAY;
    r[i].transcript = dialogue;
    r[i].transcript_len = strlen(dialogue);
    for (int p = 0; p < SP_PHASE_COUNT; p++) {
      r[i].phase_done[p] = true;
      r[i].phase_s[p] = 0.25;
    }
  }
  opts(&o, args);
  assert_true(o.output_cap > 16 * sizeof(dialogue));
  char *text = build(&o, r, SP_MAX_PORTS, &st);
  assert_true(strlen(text) > OPTS_CAP_DEFAULT);
  assert_null(strstr(text, "(long output truncated"));
  free(text);

  o.output_cap = OPTS_CAP_DEFAULT;
  text = build(&o, r, SP_MAX_PORTS, &st);
  size_t len = strlen(text);
  assert_true(len <= OPTS_CAP_DEFAULT);
  has(text, "\n(long output truncated");
  has(text, "1000 submission: CRITICAL rejected\n");
  /* Every perfdata item of every result is there. */
  has(text, "'1000_dns'=0.250000s;;;0");
  has(text, "'1015_total'=0.250000s;;;0");
  has(text, "'1015_cert_days'=10;;");
  assert_int_equal(text[len - 1], '\n');
  free(text);

  /* A huge summary gives way to perfdata on the first line. */
  const char *v0[] = {"-H", "h", NULL};
  opts(&o, v0);
  for (int i = 0; i < SP_MAX_PORTS; i++) {
    memset(r[i].detail, 'x', sizeof(r[i].detail) - 1);
    r[i].detail[sizeof(r[i].detail) - 1] = '\0';
  }
  o.output_cap = 2048;
  text = build(&o, r, SP_MAX_PORTS, &st);
  has(text, "... | '1000_dns'=0.250000s;;;0");
  has(text, "'1015_cert_days'=10;;\n");
  assert_true(strlen(text) > 2048);
  free(text);
}

/* The recommendation is on the first line, before the perfdata, and the
 * output cap never cuts it (the summary gives way first); -v has its
 * sentence. */
static void test_recommendation(void **state) {
  (void)state;
  struct check_opts o;
  opts(&o, (const char *const[]){"-H", "mail.example.test", "-v", NULL});
  struct sp_result r[2] = {make(587, SP_OK, SP_STATE_OK, 0.012),
                           make(465, SP_OK, SP_STATE_OK, 0.015)};
  r[0].tls = r[1].tls = r[1].implicit_tls = true;
  struct sp_batch b = {.results = r, .nresults = 2, .dns_s = -1};
  sp_recommend(&b, &b.recommendation);
  enum sp_state st;
  char *text = output_build(&o, r, 2, &b.recommendation, NOW, &st);
  assert_non_null(text);
  char *nl = strchr(text, '\n');
  assert_non_null(nl);
  *nl = '\0';
  has(text, "; recommend: 587 starttls | ");
  has(nl + 1, "recommendation: use 587 starttls (works); 465 implicit TLS "
              "also works");
  free(text);
  o.output_cap = 120; /* too small for the whole summary and perfdata */
  text = output_build(&o, r, 2, &b.recommendation, NOW, &st);
  assert_non_null(text);
  nl = strchr(text, '\n');
  *nl = '\0';
  has(text, "...; recommend: 587 starttls | ");
  free(text);
  /* No port works: "recommend: none" (the sentence says what to check). */
  o.output_cap = OPTS_CAP_DEFAULT;
  r[0] = make(587, SP_CONNECT_TIMEOUT, SP_STATE_CRITICAL, 10);
  r[1] = make(465, SP_CONNECT_TIMEOUT, SP_STATE_CRITICAL, 10);
  sp_recommend(&b, &b.recommendation);
  text = output_build(&o, r, 2, &b.recommendation, NOW, &st);
  has(text, "; recommend: none | ");
  has(text, "recommendation: no port works for an app: check the firewall");
  free(text);
  opts_free(&o);
}

/* No results at all is UNKNOWN. */
static void test_no_results(void **state) {
  (void)state;
  struct check_opts o;
  const char *args[] = {"-H", "h", NULL};
  opts(&o, args);
  enum sp_state st;
  char *text = build(&o, NULL, 0, &st);
  assert_int_equal(st, SP_STATE_UNKNOWN);
  assert_string_equal(text, "SMTP UNKNOWN - no probe results\n");
  free(text);
}

/* Run this file's tests. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_label_quoting),
      cmocka_unit_test(test_number_format),
      cmocka_unit_test(test_aggregate),
      cmocka_unit_test(test_timeout_remap),
      cmocka_unit_test(test_thresholds),
      cmocka_unit_test(test_first_line),
      cmocka_unit_test(test_cert_days_perf),
      cmocka_unit_test(test_all_addresses),
      cmocka_unit_test(test_require_any_output),
      cmocka_unit_test(test_long_output),
      cmocka_unit_test(test_transcript),
      cmocka_unit_test(test_output_cap),
      cmocka_unit_test(test_no_results),
      cmocka_unit_test(test_recommendation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
