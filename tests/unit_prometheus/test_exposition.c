/*
 * test_exposition.c - the Prometheus text writer: escaping, value format,
 * names, grouping and ordering of families, one HELP/TYPE per family, and
 * the errors it refuses.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exposition.h"
#include "smtp_probe.h"

/* Count the (non-overlapping) occurrences of needle in hay. */
static int count(const char *hay, const char *needle) {
  int n = 0;
  size_t len = strlen(needle);
  for (const char *p = strstr(hay, needle); p; p = strstr(p + len, needle))
    n++;
  return n;
}

/* Label values escape backslash, double quote and newline. */
static void test_escape_label(void **state) {
  (void)state;
  char out[64];
  assert_int_equal(expo_escape_label("a\\b\"c\nd", out, sizeof(out)), 10);
  assert_string_equal(out, "a\\\\b\\\"c\\nd");
  assert_int_equal(expo_escape_label("", out, sizeof(out)), 0);
  assert_string_equal(out, "");
}

/* HELP escapes backslash and newline but keeps double quotes. */
static void test_escape_help(void **state) {
  (void)state;
  char out[64];
  expo_escape_help("say \"hi\"\\\nbye", out, sizeof(out));
  assert_string_equal(out, "say \"hi\"\\\\\\nbye");
}

/* Control bytes and invalid UTF-8 become '?', valid UTF-8 stays. */
static void test_escape_sanitises(void **state) {
  (void)state;
  char out[64];
  expo_escape_label("a\x01"
                    "b\xff"
                    "c\xc3\xa9",
                    out, sizeof(out));
  assert_string_equal(out, "a?b?c\xc3\xa9");
  expo_escape_label("\xe2\x82", out, sizeof(out)); /* truncated sequence */
  assert_string_equal(out, "??");
  expo_escape_label("\xc0\xaf", out, sizeof(out)); /* overlong */
  assert_string_equal(out, "??");
}

/* An escape that does not fit reports so instead of cutting. */
static void test_escape_too_small(void **state) {
  (void)state;
  char out[4];
  assert_true(expo_escape_label("abcd", out, sizeof(out)) == (size_t)-1);
  assert_true(expo_escape_label("a\"", out, sizeof(out)) == 3);
  assert_true(expo_escape_label("ab\"", out, sizeof(out)) == (size_t)-1);
}

/* Values: integers plainly, fractions shortest, special values spelled. */
static void test_format_value(void **state) {
  (void)state;
  char b[64];
  expo_format_value(0, b, sizeof(b));
  assert_string_equal(b, "0");
  expo_format_value(-0.0, b, sizeof(b));
  assert_string_equal(b, "0");
  expo_format_value(1, b, sizeof(b));
  assert_string_equal(b, "1");
  expo_format_value(0.0015, b, sizeof(b));
  assert_string_equal(b, "0.0015");
  expo_format_value(-2.5, b, sizeof(b));
  assert_string_equal(b, "-2.5");
  expo_format_value(1700000000, b, sizeof(b));
  assert_string_equal(b, "1700000000");
  expo_format_value(0.1 + 0.2, b, sizeof(b));
  assert_true(strtod(b, NULL) == 0.1 + 0.2);
  expo_format_value(NAN, b, sizeof(b));
  assert_string_equal(b, "NaN");
  expo_format_value(INFINITY, b, sizeof(b));
  assert_string_equal(b, "+Inf");
  expo_format_value(-INFINITY, b, sizeof(b));
  assert_string_equal(b, "-Inf");
  expo_format_value(1e300, b, sizeof(b));
  assert_true(strtod(b, NULL) == 1e300);
}

/* Metric and label name rules. */
static void test_names(void **state) {
  (void)state;
  assert_true(expo_valid_metric_name("smtp_probe_success"));
  assert_true(expo_valid_metric_name("a:b_c9"));
  assert_false(expo_valid_metric_name(""));
  assert_false(expo_valid_metric_name("9abc"));
  assert_false(expo_valid_metric_name("smtp-probe"));
  assert_false(expo_valid_metric_name("smtp probe"));
  assert_true(expo_valid_label_name("port"));
  assert_true(expo_valid_label_name("_x1"));
  assert_false(expo_valid_label_name("__name__"));
  assert_false(expo_valid_label_name("a:b"));
  assert_false(expo_valid_label_name("1a"));
  assert_false(expo_valid_label_name(""));
}

/* Samples added interleaved come out grouped by family, families in
 * declaration order, samples in insertion order, HELP and TYPE once each,
 * TYPE before the first sample, a newline after the last line. */
static void test_grouping_and_order(void **state) {
  (void)state;
  struct expo_set *s = expo_new();
  assert_non_null(s);
  assert_int_equal(expo_family(s, "b_first", EXPO_GAUGE, "B help."), 0);
  assert_int_equal(expo_family(s, "a_second_total", EXPO_COUNTER, "A help."),
                   0);
  assert_int_equal(expo_family(s, "c_empty", EXPO_GAUGE, "never used"), 0);
  assert_int_equal(expo_add(s, "a_second_total", 1, "port", "25", NULL), 0);
  assert_int_equal(expo_add(s, "b_first", 2, "port", "25", NULL), 0);
  assert_int_equal(expo_add(s, "a_second_total", 3, "port", "587", NULL), 0);
  assert_int_equal(expo_add(s, "b_first", 4, "port", "587", NULL), 0);
  /* declaring again with the same type is harmless */
  assert_int_equal(expo_family(s, "b_first", EXPO_GAUGE, "B help."), 0);
  assert_null(expo_error(s));
  size_t len = 0;
  char *text = expo_render(s, &len);
  assert_non_null(text);
  assert_int_equal(len, strlen(text));
  const char *want = "# HELP b_first B help.\n"
                     "# TYPE b_first gauge\n"
                     "b_first{port=\"25\"} 2\n"
                     "b_first{port=\"587\"} 4\n"
                     "# HELP a_second_total A help.\n"
                     "# TYPE a_second_total counter\n"
                     "a_second_total{port=\"25\"} 1\n"
                     "a_second_total{port=\"587\"} 3\n";
  assert_string_equal(text, want);
  assert_int_equal(count(text, "# HELP b_first "), 1);
  assert_int_equal(count(text, "c_empty"), 0);
  free(text);
  expo_free(s);
}

/* Samples without labels, several labels and escaped values. */
static void test_labels(void **state) {
  (void)state;
  struct expo_set *s = expo_new();
  expo_family(s, "x_info", EXPO_GAUGE, "Help with \\ and\nnewline.");
  expo_family(s, "y", EXPO_UNTYPED, "Y.");
  expo_add(s, "x_info", 1, "port", "587", "cipher", "a\"b\\c\nd", NULL);
  expo_add(s, "y", 0.5, NULL);
  assert_null(expo_error(s));
  char *text = expo_render(s, NULL);
  assert_string_equal(text,
                      "# HELP x_info Help with \\\\ and\\nnewline.\n"
                      "# TYPE x_info gauge\n"
                      "x_info{port=\"587\",cipher=\"a\\\"b\\\\c\\nd\"} 1\n"
                      "# HELP y Y.\n"
                      "# TYPE y untyped\n"
                      "y 0.5\n");
  free(text);
  expo_free(s);
}

/* Bad declarations are refused and the first error kept. */
static void test_family_errors(void **state) {
  (void)state;
  struct expo_set *s = expo_new();
  assert_int_equal(expo_family(s, "requests", EXPO_COUNTER, "h"), -1);
  assert_non_null(strstr(expo_error(s), "_total"));
  expo_free(s);

  s = expo_new();
  assert_int_equal(expo_family(s, "thing_total", EXPO_GAUGE, "h"), -1);
  expo_free(s);

  s = expo_new();
  assert_int_equal(expo_family(s, "bad-name", EXPO_GAUGE, "h"), -1);
  assert_non_null(strstr(expo_error(s), "bad-name"));
  expo_free(s);

  s = expo_new();
  assert_int_equal(expo_family(s, "g", EXPO_GAUGE, "h"), 0);
  assert_int_equal(expo_family(s, "g", EXPO_UNTYPED, "h"), -1);
  assert_int_equal(expo_family(s, "bad-too", EXPO_GAUGE, "h"), -1);
  assert_non_null(strstr(expo_error(s), "another type")); /* first kept */
  expo_free(s);
}

/* Bad samples are refused: undeclared family, bad or repeated label,
 * duplicate label set; other samples still render. */
static void test_sample_errors(void **state) {
  (void)state;
  struct expo_set *s = expo_new();
  expo_family(s, "g", EXPO_GAUGE, "h");
  assert_int_equal(expo_add(s, "nope", 1, NULL), -1);
  assert_int_equal(expo_add(s, "g", 1, "__name__", "x", NULL), -1);
  assert_int_equal(expo_add(s, "g", 1, "port", "1", "port", "2", NULL), -1);
  assert_int_equal(expo_add(s, "g", 1, "port", "25", NULL), 0);
  assert_int_equal(expo_add(s, "g", 2, "port", "25", NULL), -1);
  assert_int_equal(expo_add(s, "g", 2, "port", "2", NULL), 0);
  assert_non_null(strstr(expo_error(s), "undeclared"));
  char *text = expo_render(s, NULL);
  assert_int_equal(count(text, "g{port=\"25\"}"), 1);
  assert_int_equal(count(text, "g{port=\"2\"} 2\n"), 1);
  free(text);
  expo_free(s);
}

/* The shared text buffer (smtp_probe.h) never grows past its cap and
 * remembers a failure: the exporter's pages and expositions rely on it. */
static void test_buf_cap(void **state) {
  (void)state;
  struct sp_buf sb;
  sp_buf_init(&sb, 7);
  assert_int_equal(sp_buf_puts(&sb, "abc"), 0);
  assert_int_equal(sp_buf_printf(&sb, "%d", 1234), 0);
  assert_string_equal(sp_buf_str(&sb), "abc1234");
  assert_int_equal(sp_buf_puts(&sb, "x"), -1); /* 8 bytes > cap */
  assert_true(sb.failed);
  assert_int_equal(sp_buf_puts(&sb, ""), -1); /* stays failed */
  assert_string_equal(sp_buf_str(&sb), "abc1234");
  assert_true(sb.alloc <= 8);
  size_t len;
  char *text = sp_buf_take(&sb, &len);
  assert_int_equal(len, 7);
  assert_string_equal(text, "abc1234");
  free(text);
  assert_false(sb.failed);
  assert_string_equal(sp_buf_str(&sb), "");
  text = sp_buf_take(&sb, &len); /* nothing added: "" */
  assert_int_equal(len, 0);
  assert_string_equal(text, "");
  free(text);
  sp_buf_free(&sb);
}

/* A refused printf appends nothing; sanitised text is all or nothing. */
static void test_buf_text(void **state) {
  (void)state;
  struct sp_buf sb;
  sp_buf_init(&sb, 16);
  assert_int_equal(sp_buf_add_clean(&sb, "a|b\t\n\x01\xff", 7, 0), 0);
  assert_string_equal(sp_buf_str(&sb), "a|b????");
  assert_int_equal(sp_buf_add_clean(&sb, "|\t\r\n\x7f", 5,
                                    SP_CLEAN_SPACES | SP_CLEAN_NO_PIPE),
                   0);
  assert_string_equal(sp_buf_str(&sb), "a|b????"
                                       "/   ?");
  assert_int_equal(sp_buf_printf(&sb, "%s", "12345"), -1);
  assert_string_equal(sp_buf_str(&sb), "a|b????"
                                       "/   ?");
  assert_int_equal(sp_buf_add_clean(&sb, "z", 1, 0), -1);
  sp_buf_free(&sb);
  /* the byte-stream append is not sticky: the core's socket buffers */
  sp_buf_init(&sb, 4);
  assert_int_equal(sp_buf_append(&sb, "12345", 5), -1);
  assert_int_equal(sp_buf_append(&sb, "1234", 4), 0);
  assert_string_equal(sp_buf_str(&sb), "1234");
  sp_buf_free(&sb);
}

/* Run this file's tests. */
int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_escape_label),
      cmocka_unit_test(test_escape_help),
      cmocka_unit_test(test_escape_sanitises),
      cmocka_unit_test(test_escape_too_small),
      cmocka_unit_test(test_format_value),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_grouping_and_order),
      cmocka_unit_test(test_labels),
      cmocka_unit_test(test_family_errors),
      cmocka_unit_test(test_sample_errors),
      cmocka_unit_test(test_buf_cap),
      cmocka_unit_test(test_buf_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
