/*
 * test_target.c - from /probe parameters to a core request: target forms,
 * the scrape-timeout budget, port selection; the debug page's credential
 * masking; and the samples made from fabricated results.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "debug.h"
#include "exposition.h"
#include "metrics.h"
#include "target.h"

/* Good target forms parse to host and port. */
static void test_target_forms(void **state) {
  (void)state;
  static const struct {
    const char *in;   /* the target parameter */
    const char *host; /* host expected */
    int port;         /* port expected (0: none) */
  } ok[] = {
      {"mail.example.com", "mail.example.com", 0},
      {"mail.example.com:587", "mail.example.com", 587},
      {"127.0.0.1:465", "127.0.0.1", 465},
      {"[::1]:587", "::1", 587},
      {"[::1]", "::1", 0},
      {"::1", "::1", 0},
      {"2001:db8::25", "2001:db8::25", 0},
      {"host:65535", "host", 65535},
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    struct target t;
    char err[256];
    if (target_parse(ok[i].in, &t, err, sizeof(err)) != 0)
      fail_msg("%s: %s", ok[i].in, err);
    assert_string_equal(t.host, ok[i].host);
    assert_int_equal(t.port, ok[i].port);
  }
}

/* Bad targets are refused with a message. */
static void test_target_bad(void **state) {
  (void)state;
  const char *bad[] = {"",         "host:",    "host:0",   "host:65536",
                       "host:25x", "[::1",     "[zz]:25",  "[::1]x",
                       "[::1]:",   "a b",      "smtp://x", "-host",
                       "host:+25", "1:2:3:zz", "h\"q",     "[127.0.0.1]:25"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct target t;
    char err[256] = "";
    if (target_parse(bad[i], &t, err, sizeof(err)) == 0)
      fail_msg("target \"%s\" accepted", bad[i]);
    assert_true(strlen(err) > 0);
  }
  char longname[400];
  memset(longname, 'a', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  struct target t;
  char err[256];
  assert_int_equal(target_parse(longname, &t, err, sizeof(err)), -1);
}

/* The budget: module timeout, lowered to header minus offset. */
static void test_budget(void **state) {
  (void)state;
  char why[256];
  assert_true(target_budget(5, NULL, 0.5, why, sizeof(why)) == 5);
  assert_non_null(strstr(why, "no scrape timeout"));
  assert_true(target_budget(5, "10", 0.5, why, sizeof(why)) == 5);
  assert_true(target_budget(5, "3", 0.5, why, sizeof(why)) == 2.5);
  assert_non_null(strstr(why, "scrape timeout 3.000s"));
  assert_true(target_budget(5, "0.4", 0.5, why, sizeof(why)) == 0.2);
  assert_true(target_budget(5, "abc", 0.5, why, sizeof(why)) == 5);
  assert_true(target_budget(5, "-3", 0.5, why, sizeof(why)) == 5);
  assert_true(target_budget(5, "", 0.5, why, sizeof(why)) == 5);
  assert_true(target_budget(5, "inf", 0.5, why, sizeof(why)) == 5);
}

/* Ports come from the target when it names one, else from the module. */
static void test_request_ports(void **state) {
  (void)state;
  struct module mod;
  memset(&mod, 0, sizeof(mod));
  snprintf(mod.name, sizeof(mod.name), "m");
  sp_request_init(&mod.req);
  sp_request_add_port(&mod.req, 587, SP_TLS_AUTO, SP_ROLE_DEFAULT);
  sp_request_add_port(&mod.req, 465, SP_TLS_AUTO, SP_ROLE_DEFAULT);
  mod.req.timeout_s = 5.0;
  struct target t = {"127.0.0.1", 0};
  struct sp_request req;
  char err[256];
  assert_int_equal(target_request(&mod, &t, 2.5, true, &req, err, sizeof(err)),
                   0);
  assert_int_equal(req.nports, 2);
  assert_int_equal(req.ports[0].port, 587);
  assert_int_equal(req.ports[1].port, 465);
  assert_true(req.timeout_s == 2.5);
  assert_true(req.trace);
  assert_string_equal(req.host, "127.0.0.1");
  t.port = 2525;
  assert_int_equal(target_request(&mod, &t, 2.5, false, &req, err, sizeof(err)),
                   0);
  assert_int_equal(req.nports, 1);
  assert_int_equal(req.ports[0].port, 2525);
  mod.req.nports = 0;
  t.port = 0;
  assert_int_equal(target_request(&mod, &t, 2.5, false, &req, err, sizeof(err)),
                   -1);
  assert_non_null(strstr(err, "HOST:PORT"));
}

/* AUTH arguments and answers to 334 challenges are masked. */
static void test_mask(void **state) {
  (void)state;
  const char *in = "S: 220 mail ESMTP\n"
                   "C: EHLO probe\n"
                   "C: AUTH PLAIN AGZvbwBzZWNyZXQ=\n"
                   "S: 235 ok\n"
                   "C: auth login\n"
                   "S: 334 VXNlcm5hbWU6\n"
                   "C: Zm9v\n"
                   "S: 334 UGFzc3dvcmQ6\n"
                   "C: c2VjcmV0\n"
                   "S: 235 ok\n"
                   "C: QUIT\n";
  struct sp_buf out;
  sp_buf_init(&out, 4096);
  debug_mask_transcript(in, strlen(in), &out);
  const char *s = sp_buf_str(&out);
  assert_null(strstr(s, "AGZvbwBzZWNyZXQ="));
  assert_null(strstr(s, "Zm9v"));
  assert_null(strstr(s, "c2VjcmV0"));
  assert_non_null(strstr(s, "C: AUTH PLAIN <masked>\n"));
  assert_non_null(strstr(s, "C: AUTH login\n"));
  assert_non_null(strstr(s, "S: 334 VXNlcm5hbWU6\nC: <masked>\n"));
  assert_non_null(strstr(s, "C: EHLO probe\n"));
  assert_non_null(strstr(s, "C: QUIT\n"));
  sp_buf_free(&out);
}

/* A fabricated STARTTLS result on 587 and a refused one on 25. */
static void fabricate(struct sp_result res[2]) {
  memset(res, 0, 2 * sizeof(*res));
  snprintf(res[0].host, sizeof(res[0].host), "mail.example");
  res[0].port = 587;
  res[0].role = SP_ROLE_SUBMISSION;
  res[0].code = SP_OK;
  res[0].state = SP_STATE_OK;
  snprintf(res[0].address, sizeof(res[0].address), "::1");
  res[0].phase_done[SP_PHASE_CONNECT] = true;
  res[0].phase_s[SP_PHASE_CONNECT] = 0.00025;
  res[0].phase_done[SP_PHASE_STARTTLS] = true;
  res[0].phase_s[SP_PHASE_STARTTLS] = 0.001;
  res[0].phase_done[SP_PHASE_TOTAL] = true;
  res[0].phase_s[SP_PHASE_TOTAL] = 0.0125;
  res[0].reply_code[SP_PHASE_BANNER] = 220;
  res[0].reply_code[SP_PHASE_STARTTLS] = 220;
  res[0].tls = true;
  snprintf(res[0].tls_version, sizeof(res[0].tls_version), "TLSv1.3");
  snprintf(res[0].tls_cipher, sizeof(res[0].tls_cipher), "TLS_AES_256_GCM");
  res[0].verified = true;
  res[0].hostname_check = 1;
  res[0].leaf_not_after = 1900000000;
  res[0].chain_not_after = 1800000000;
  res[0].caps_plain.seen = true;
  res[0].caps_plain.flags = SP_CAP_STARTTLS;
  res[0].caps_tls.seen = true;
  res[0].caps_tls.flags = SP_CAP_AUTH | SP_CAP_SIZE;
  res[0].caps_tls.size_limit = 10240000;
  snprintf(res[0].caps_tls.auth_mechs, sizeof(res[0].caps_tls.auth_mechs),
           "PLAIN LOGIN");
  snprintf(res[1].host, sizeof(res[1].host), "mail.example");
  res[1].port = 25;
  res[1].role = SP_ROLE_RELAY;
  res[1].code = SP_CONNECT_REFUSED;
  res[1].state = SP_STATE_CRITICAL;
  res[1].hostname_check = -1;
  res[1].phase_done[SP_PHASE_TOTAL] = true;
  res[1].phase_s[SP_PHASE_TOTAL] = 0.0003;
}

/* Samples of fabricated results: every sample has a port label, phases
 * only when done, code words and values as the contract says. */
static void test_probe_samples(void **state) {
  (void)state;
  struct sp_result res[2];
  fabricate(res);
  struct sp_batch batch = {.results = res, .nresults = 2, .dns_s = -1};
  struct expo_set *set = expo_new();
  assert_int_equal(metrics_probe(set, &batch), 0);
  char *text = expo_render(set, NULL);
  assert_non_null(text);
  const char *want[] = {
      "smtp_probe_success{port=\"587\"} 1\n",
      "smtp_probe_success{port=\"25\"} 0\n",
      "smtp_probe_duration_seconds{port=\"587\"} 0.0125\n",
      "smtp_probe_phase_duration_seconds{port=\"587\",phase=\"connect\"} "
      "0.00025\n",
      "smtp_probe_phase_duration_seconds{port=\"587\",phase=\"starttls\"} "
      "0.001\n",
      "smtp_probe_diagnosis_info{port=\"587\",code=\"ok\"} 1\n",
      "smtp_probe_diagnosis_info{port=\"25\",code=\"connect_refused\"} 1\n",
      "smtp_probe_state{port=\"25\"} 2\n",
      "smtp_probe_reply_code{port=\"587\",phase=\"starttls\"} 220\n",
      "smtp_probe_tls_version_info{port=\"587\",version=\"TLSv1.3\"} 1\n",
      "smtp_probe_tls_cipher_info{port=\"587\",cipher=\"TLS_AES_256_GCM\"} 1\n",
      "smtp_probe_cert_not_after_timestamp_seconds{port=\"587\"} 1900000000\n",
      "smtp_probe_cert_chain_earliest_not_after_timestamp_seconds{port="
      "\"587\"} 1800000000\n",
      "smtp_probe_starttls_advertised{port=\"587\"} 1\n",
      "smtp_probe_auth_mechanism_info{port=\"587\",mechanism=\"LOGIN\",tls="
      "\"true\"} 1\n",
      "smtp_probe_size_limit_bytes{port=\"587\"} 10240000\n",
      "smtp_probe_ip_protocol{port=\"587\"} 6\n",
      "# TYPE smtp_probe_success gauge\n",
  };
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    if (strstr(text, want[i]) == NULL)
      fail_msg("missing: %s\nin:\n%s", want[i], text);
  assert_null(strstr(text, "phase=\"total\""));
  assert_null(strstr(text, "phase=\"dns\""));
  assert_null(strstr(text, "smtp_probe_tls_version_info{port=\"25\""));
  /* every sample line carries a port label */
  for (const char *line = text; *line;) {
    const char *nl = strchr(line, '\n');
    assert_non_null(nl);
    if (line[0] != '#') {
      const char *brace = memchr(line, '{', (size_t)(nl - line));
      assert_non_null(brace);
      assert_int_equal(strncmp(brace, "{port=\"", 7), 0);
    }
    line = nl + 1;
  }
  free(text);
  expo_free(set);
}

/* Self metrics: counters by module and code, reload gauges. */
static void test_self_samples(void **state) {
  (void)state;
  struct exporter_stats st;
  stats_init(&st, 4);
  stats_count_probe(&st, "submission", SP_OK);
  stats_count_probe(&st, "submission", SP_OK);
  stats_count_probe(&st, "mx", SP_CONNECT_REFUSED);
  st.requests_503 = 3;
  st.reload_ok = true;
  st.reload_success_ts = 1700000000;
  struct build_versions v = {"0.1.0", "0.9.75", "0.2.5"};
  struct expo_set *set = expo_new();
  assert_int_equal(metrics_self(set, &st, &v, 2), 0);
  assert_int_equal(metrics_process(set), 0);
  char *text = expo_render(set, NULL);
  const char *want[] = {
      "smtp_exporter_probes_total{module=\"submission\",code=\"ok\"} 2\n",
      "smtp_exporter_probes_total{module=\"mx\",code=\"connect_refused\"} 1\n",
      "smtp_exporter_probe_requests_rejected_total 3\n",
      "smtp_exporter_probe_concurrency_limit 4\n",
      "smtp_exporter_engine_probes_in_flight 2\n",
      "smtp_exporter_config_last_reload_successful 1\n",
      "smtp_exporter_config_last_reload_success_timestamp_seconds 1700000000\n",
      "# TYPE process_cpu_seconds_total counter\n",
      "process_resident_memory_bytes ",
      "process_open_fds ",
      "process_start_time_seconds ",
  };
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    if (strstr(text, want[i]) == NULL)
      fail_msg("missing: %s\nin:\n%s", want[i], text);
  free(text);
  expo_free(set);
}

/* Run every test of this file; "sample" prints the fabricated exposition
 * instead (for promtool). */
int main(int argc, char **argv) {
  /* "sample": print the fabricated exposition for promtool to check */
  if (argc > 1 && strcmp(argv[1], "sample") == 0) {
    struct sp_result res[2];
    fabricate(res);
    struct sp_batch batch = {.results = res, .nresults = 2, .dns_s = -1};
    struct expo_set *set = expo_new();
    metrics_probe(set, &batch);
    char *text = expo_render(set, NULL);
    fputs(text, stdout);
    free(text);
    expo_free(set);
    return 0;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_target_forms), cmocka_unit_test(test_target_bad),
      cmocka_unit_test(test_budget),       cmocka_unit_test(test_request_ports),
      cmocka_unit_test(test_mask),         cmocka_unit_test(test_probe_samples),
      cmocka_unit_test(test_self_samples),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
