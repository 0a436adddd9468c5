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
      cmocka_unit_test(limit_zero),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
