/* Unit tests: capped buffers, sanitising, transcripts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "probe_internal.h"

/* A buffer never grows past its cap and stays intact when refused. */
static void cap_holds(void **state) {
  (void)state;
  struct sp_buf b;
  sp_buf_init(&b, 10);
  assert_int_equal(sp_buf_append(&b, "12345", 5), 0);
  assert_int_equal(sp_buf_append(&b, "67890", 5), 0);
  assert_int_equal(sp_buf_append(&b, "x", 1), -1);
  assert_int_equal(b.len, 10);
  assert_memory_equal(b.data, "1234567890", 10);
  assert_true(b.alloc <= 11);
  sp_buf_consume(&b, 4);
  assert_string_equal(b.data, "567890");
  sp_buf_consume(&b, 100);
  assert_int_equal(b.len, 0);
  sp_buf_free(&b);
}

/* Non-printable bytes become '?', the output always ends. */
static void sanitise(void **state) {
  (void)state;
  char out[8];
  size_t n = sp_sanitize(out, sizeof(out), "a\x00\x07\xff\tbcdefgh", 12);
  assert_int_equal(n, 7);
  assert_string_equal(out, "a????bc");
}

/* A transcript stops at its cap with one marker. */
static void transcript_cap(void **state) {
  (void)state;
  struct sp_buf t;
  sp_buf_init(&t, 100);
  for (int i = 0; i < 50; i++)
    sp_transcript_add(&t, "S: ", "250-SOMETHING LONG", 18);
  assert_true(t.len <= 100);
  assert_non_null(strstr(t.data, "[transcript truncated]"));
  assert_null(strstr(strstr(t.data, "[transcript truncated]") + 1,
                     "[transcript truncated]"));
  sp_buf_free(&t);
}

/* Run this file's tests. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cap_holds),
      cmocka_unit_test(sanitise),
      cmocka_unit_test(transcript_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
