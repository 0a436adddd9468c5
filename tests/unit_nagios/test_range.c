/*
 * test_range.c - Nagios range parsing and evaluation (nagios/range.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "range.h"

/* Parse s, failing the test when it does not parse. */
static struct range must_parse(const char *s) {
  struct range r;
  char err[160];
  assert_int_equal(range_parse(s, &r, err, sizeof(err)), 0);
  return r;
}

/* "10": alert outside 0..10, inclusive. */
static void test_plain_end(void **state) {
  (void)state;
  struct range r = must_parse("10");
  assert_false(r.inside);
  assert_false(r.start_inf);
  assert_false(r.end_inf);
  assert_true(r.start == 0.0);
  assert_true(r.end == 10.0);
  assert_false(range_alerts(&r, 0.0));
  assert_false(range_alerts(&r, 10.0));
  assert_true(range_alerts(&r, 10.000001));
  assert_true(range_alerts(&r, -0.5));
  assert_string_equal(r.text, "10");
}

/* "10:": alert below 10 only. */
static void test_open_end(void **state) {
  (void)state;
  struct range r = must_parse("10:");
  assert_true(r.end_inf);
  assert_true(range_alerts(&r, 9.999));
  assert_false(range_alerts(&r, 10.0));
  assert_false(range_alerts(&r, 1e9));
}

/* "~:10": alert above 10 only. */
static void test_neg_infinity(void **state) {
  (void)state;
  struct range r = must_parse("~:10");
  assert_true(r.start_inf);
  assert_false(range_alerts(&r, -1e9));
  assert_false(range_alerts(&r, 10.0));
  assert_true(range_alerts(&r, 10.5));
}

/* "10:20": alert outside 10..20, both bounds inclusive. */
static void test_both_bounds(void **state) {
  (void)state;
  struct range r = must_parse("10:20");
  assert_true(range_alerts(&r, 9.99));
  assert_false(range_alerts(&r, 10.0));
  assert_false(range_alerts(&r, 15.0));
  assert_false(range_alerts(&r, 20.0));
  assert_true(range_alerts(&r, 20.01));
}

/* "@10:20": alert inside 10..20, both bounds inclusive. */
static void test_inside(void **state) {
  (void)state;
  struct range r = must_parse("@10:20");
  assert_true(r.inside);
  assert_false(range_alerts(&r, 9.99));
  assert_true(range_alerts(&r, 10.0));
  assert_true(range_alerts(&r, 20.0));
  assert_false(range_alerts(&r, 20.01));
}

/* Decimals, negative starts, "@" with a plain end, ":N" (start 0). */
static void test_other_forms(void **state) {
  (void)state;
  struct range r = must_parse("0.5:1.25");
  assert_true(range_alerts(&r, 0.49));
  assert_false(range_alerts(&r, 1.25));
  r = must_parse("-5:5");
  assert_false(range_alerts(&r, -5.0));
  assert_true(range_alerts(&r, -5.1));
  r = must_parse("@3");
  assert_true(range_alerts(&r, 0.0));
  assert_true(range_alerts(&r, 3.0));
  assert_false(range_alerts(&r, 3.1));
  r = must_parse(":7");
  assert_true(r.start == 0.0);
  assert_true(range_alerts(&r, 7.5));
  r = must_parse("10:10");
  assert_false(range_alerts(&r, 10.0));
  assert_true(range_alerts(&r, 10.001));
}

/* Malformed ranges are rejected with a message. */
static void test_invalid(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",
      "@",
      ":",
      "abc",
      "10:5",
      "1e3",
      "10::20",
      "~",
      "10:~",
      "1,5",
      "0x10",
      "nan",
      "inf",
      "@@1",
      "5 ",
      " 5",
      "10:20:",
      "--1",
      "1.2.3",
      "~:abc",
      "1234567890123456789012345678901234567890123456789012345678901234567"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct range r;
    char err[160] = "";
    if (range_parse(bad[i], &r, err, sizeof(err)) == 0)
      fail_msg("range '%s' was accepted", bad[i]);
    assert_true(strlen(err) > 0);
  }
  struct range r;
  char err[160];
  assert_int_equal(range_parse(NULL, &r, err, sizeof(err)), -1);
}

/* The explanation names the bound that was crossed. */
static void test_explain(void **state) {
  (void)state;
  char buf[64];
  struct range r = must_parse("1");
  range_explain(&r, 1.52, buf, sizeof(buf));
  assert_string_equal(buf, "> 1");
  r = must_parse("0.25:");
  range_explain(&r, 0.1, buf, sizeof(buf));
  assert_string_equal(buf, "< 0.25");
  r = must_parse("@1:2");
  range_explain(&r, 1.5, buf, sizeof(buf));
  assert_string_equal(buf, "inside @1:2");
  assert_int_equal(range_explain(&r, 1.5, buf, 4), 3);
  assert_string_equal(buf, "ins");
}

/* Run this file's tests. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_end),    cmocka_unit_test(test_open_end),
      cmocka_unit_test(test_neg_infinity), cmocka_unit_test(test_both_bounds),
      cmocka_unit_test(test_inside),       cmocka_unit_test(test_other_forms),
      cmocka_unit_test(test_invalid),      cmocka_unit_test(test_explain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
