/*
 * fuzz_range.c - fuzz the Nagios threshold range parser (range_parse)
 * and what uses a parsed range (range_alerts, range_explain).
 *
 * Input: the range text (cut at the first NUL or 200 bytes); when it
 * parses, the values 0, the range's bounds and a few neighbours are
 * evaluated. Checks: a parsed range has start <= end when both are
 * finite, its text is what was given, explanations fit their buffer and
 * an alert is explained; a rejected range says why.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "range.h"

/* Evaluate one value against a parsed range and check the explanation. */
static void eval(const struct range *r, double v) {
  char why[64];
  bool alert = range_alerts(r, v);
  size_t n = range_explain(r, v, why, sizeof(why));
  FUZZ_ASSERT(n < sizeof(why) && strlen(why) == n, "explanation fits");
  if (alert)
    FUZZ_ASSERT(n > 0, "an alert is explained");
  if (!r->inside && !r->start_inf && !r->end_inf && v >= r->start &&
      v <= r->end)
    FUZZ_ASSERT(!alert, "no alert inside a plain range");
  if (r->inside && !r->start_inf && !r->end_inf && v >= r->start && v <= r->end)
    FUZZ_ASSERT(alert, "alert inside an @ range");
}

/* libFuzzer entry point: one range string. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char text[201];
  struct range r;
  char err[128];
  size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
  memcpy(text, data, n);
  text[n] = '\0';
  err[0] = '\0';
  if (range_parse(text, &r, err, sizeof(err)) != 0) {
    FUZZ_ASSERT(err[0] != '\0', "a rejected range says why");
    FUZZ_ASSERT(strnlen(err, sizeof(err)) < sizeof(err), "error terminated");
    return 0;
  }
  FUZZ_ASSERT(strcmp(r.text, text) == 0, "range keeps its text");
  if (!r.start_inf)
    FUZZ_ASSERT(isfinite(r.start), "finite start");
  if (!r.end_inf)
    FUZZ_ASSERT(isfinite(r.end), "finite end");
  if (!r.start_inf && !r.end_inf)
    FUZZ_ASSERT(r.start <= r.end, "start <= end");
  double vals[] = {0.0, -1.0, 1e300, -1e300, NAN};
  for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
    eval(&r, vals[i]);
  if (!r.start_inf) {
    eval(&r, r.start);
    eval(&r, nextafter(r.start, -INFINITY));
  }
  if (!r.end_inf) {
    eval(&r, r.end);
    eval(&r, nextafter(r.end, INFINITY));
  }
  return 0;
}
