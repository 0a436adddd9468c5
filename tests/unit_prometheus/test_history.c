/* Unit tests: the ring of recent probes behind the landing page
 * (prometheus/history.c): bounded by its limit, newest first, every text
 * escaped, logs cut at their cap, evicted entries gone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "history.h"

/* A one-result batch of port/code/state. */
static struct sp_batch *batch_of(struct sp_result *r, uint16_t port,
                                 enum sp_code code, enum sp_state state) {
  static struct sp_batch b;
  memset(r, 0, sizeof(*r));
  r->port = port;
  r->code = code;
  r->state = state;
  b = (struct sp_batch){.results = r, .nresults = 1, .dns_s = -1};
  return &b;
}

/* The ring keeps the last N, newest first; older ones are gone. */
static void bounded_and_ordered(void **state) {
  (void)state;
  struct history h;
  assert_int_equal(history_init(&h, 3), 0);
  struct sp_result r;
  for (int i = 1; i <= 5; i++) {
    char target[32];
    snprintf(target, sizeof(target), "host%d", i);
    history_add(&h, "mod", target,
                batch_of(&r, 587, i == 4 ? SP_DEFERRED : SP_OK,
                         i == 4 ? SP_STATE_CRITICAL : SP_STATE_OK),
                0.01 * i, "log text", 8);
  }
  struct sp_buf out;
  sp_buf_init(&out, 65536);
  history_rows(&h, &out);
  const char *html = sp_buf_str(&out);
  const char *p5 = strstr(html, "host5"), *p4 = strstr(html, "host4"),
             *p3 = strstr(html, "host3");
  assert_non_null(p5);
  assert_non_null(p4);
  assert_non_null(p3);
  assert_true(p5 < p4 && p4 < p3); /* newest first */
  assert_null(strstr(html, "host2"));
  assert_null(strstr(html, "host1"));
  assert_non_null(strstr(html, "587 deferred CRITICAL"));
  sp_buf_free(&out);
  sp_buf_init(&out, 65536);
  assert_true(history_log(&h, 5, &out));
  assert_string_equal(sp_buf_str(&out), "log text");
  sp_buf_free(&out);
  sp_buf_init(&out, 65536);
  assert_false(history_log(&h, 1, &out)); /* pushed out */
  assert_false(history_log(&h, 99, &out));
  sp_buf_free(&out);
  history_free(&h);
}

/* Every text that came from outside is escaped; a long log is cut. */
static void escaped_and_capped(void **state) {
  (void)state;
  struct history h;
  assert_int_equal(history_init(&h, 2), 0);
  struct sp_result r;
  size_t big = HISTORY_LOG_CAP * 2;
  char *log = malloc(big);
  assert_non_null(log);
  memset(log, 'x', big);
  history_add(&h, "m<b>", "<script>alert(1)</script>",
              batch_of(&r, 25, SP_OK, SP_STATE_OK), 0.5, log, big);
  free(log);
  struct sp_buf out;
  sp_buf_init(&out, 65536);
  history_rows(&h, &out);
  assert_null(strstr(sp_buf_str(&out), "<script>"));
  assert_non_null(strstr(sp_buf_str(&out), "&lt;script&gt;"));
  assert_non_null(strstr(sp_buf_str(&out), "m&lt;b&gt;"));
  sp_buf_free(&out);
  sp_buf_init(&out, 2 * HISTORY_LOG_CAP);
  assert_true(history_log(&h, 1, &out));
  assert_true(out.len < HISTORY_LOG_CAP + 64);
  assert_non_null(strstr(sp_buf_str(&out), "[log truncated]"));
  sp_buf_free(&out);
  history_free(&h);
}

/* A result with a dialogue of n copies of a few lines, one of them an
 * AUTH with its secret (the page masks it). */
static void result_with_dialogue(struct sp_result *r, uint16_t port, int n) {
  memset(r, 0, sizeof(*r));
  snprintf(r->host, sizeof(r->host), "mail.example");
  snprintf(r->address, sizeof(r->address), "192.0.2.7");
  r->port = port;
  r->code = SP_OK;
  r->state = SP_STATE_OK;
  r->tls = true;
  snprintf(r->tls_version, sizeof(r->tls_version), "TLSv1.3");
  static const char lines[] = "S: 220 mail.example ESMTP\nC: EHLO probe\n"
                              "C: AUTH PLAIN c2VjcmV0\nS: 334 \nC: secret\n"
                              "* a decision\n";
  r->transcript_len = (size_t)n * (sizeof(lines) - 1);
  r->transcript = malloc(r->transcript_len + 1);
  assert_non_null(r->transcript);
  for (int i = 0; i < n; i++)
    memcpy(r->transcript + (size_t)i * (sizeof(lines) - 1), lines,
           sizeof(lines) - 1);
  r->transcript[r->transcript_len] = '\0';
}

/* A probe kept in parts (history_add_probe) serves, when asked, exactly
 * what rendering its debug page at once kept (debug_page without metrics,
 * cut at HISTORY_LOG_CAP), secrets masked, the dialogue taken from the
 * batch; also for a page past the cap. */
static void kept_in_parts(void **state) {
  (void)state;
  for (int size = 0; size < 2; size++) {
    struct history h;
    assert_int_equal(history_init(&h, 2), 0);
    struct sp_result r[2];
    result_with_dialogue(&r[0], 587, size ? 1200 : 1);
    result_with_dialogue(&r[1], 465, size ? 1200 : 2);
    struct sp_batch b = {.results = r, .nresults = 2, .dns_s = -1};
    const char *trail = "target mail.example: host mail.example\n";
    struct sp_buf want;
    sp_buf_init(&want, HISTORY_LOG_CAP);
    debug_page(&want, trail, &b, NULL);
    assert_true(size ? want.failed : !want.failed);
    history_add_probe(&h, "mod", "mail.example", &b, 0.25, strdup(trail));
    assert_null(r[0].transcript); /* taken, not copied */
    assert_null(r[1].transcript);
    struct sp_buf out;
    sp_buf_init(&out, HISTORY_LOG_CAP + 64);
    assert_true(history_log(&h, 1, &out));
    assert_int_equal(out.len, want.len);
    assert_memory_equal(sp_buf_str(&out), sp_buf_str(&want), want.len);
    assert_null(strstr(sp_buf_str(&out), "c2VjcmV0"));
    assert_non_null(strstr(sp_buf_str(&out), "C: AUTH PLAIN <masked>"));
    sp_buf_free(&out);
    sp_buf_init(&out, 65536);
    history_rows(&h, &out);
    assert_non_null(strstr(sp_buf_str(&out), "587 ok OK; 465 ok OK"));
    sp_buf_free(&out);
    sp_buf_free(&want);
    history_free(&h);
  }
}

/* A limit of 0 keeps nothing. */
static void limit_zero(void **state) {
  (void)state;
  struct history h;
  assert_int_equal(history_init(&h, 0), 0);
  struct sp_result r;
  history_add(&h, "m", "t", batch_of(&r, 25, SP_OK, SP_STATE_OK), 0, "x", 1);
  struct sp_buf out;
  sp_buf_init(&out, 1024);
  history_rows(&h, &out);
  assert_int_equal(out.len, 0);
  assert_false(history_log(&h, 1, &out));
  sp_buf_free(&out);
  history_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bounded_and_ordered),
      cmocka_unit_test(escaped_and_capped),
      cmocka_unit_test(kept_in_parts),
      cmocka_unit_test(limit_zero),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
