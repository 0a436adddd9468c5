/*
 * output.h - evaluate results into Nagios states and assemble the plugin
 * output: the first line (status, per-port summary, all perfdata) and
 * the long output (one block per result), within a size cap.
 *
 * Pure: works on an array of struct sp_result, no network.
 */
#ifndef NAGIOS_OUTPUT_H
#define NAGIOS_OUTPUT_H

#include <stddef.h>
#include <time.h>

#include "options.h"
#include "smtp_probe.h"

/* How one result came out after the adapter's own rules. */
struct check_eval {
  enum sp_state state; /* res->state, -t remapping, then thresholds */
  char why[128];       /* threshold that fired ("response time 1.5s > 1") */
};

/* The worse of two states: CRITICAL > WARNING > UNKNOWN > OK. */
enum sp_state state_worse(enum sp_state a, enum sp_state b);

/* Evaluate one result: its base state, the -t STATE for timeout codes, and
 * the response-time thresholds when its code is ok. */
void eval_result(const struct check_opts *o, const struct sp_result *res,
                 struct check_eval *ev);

/* The overall state: worst of all, or with require_any OK when one result
 * is OK. UNKNOWN when there are no results. */
enum sp_state eval_aggregate(const struct check_eval *ev, int n,
                             bool require_any);

/* Write a perfdata label quoted ('...', a quote doubled, '=' replaced by
 * '_') into buf; returns the length written (truncated to fit). */
size_t perf_quote_label(const char *label, char *buf, size_t buflen);

/* Write a number in fixed point with 6 decimals (never an exponent; "U"
 * when not finite) into buf; returns the length written. */
size_t perf_format_number(double v, char *buf, size_t buflen);

/* Build the whole plugin output for n results into a new string (caller
 * frees); *state receives the exit state. rec (may be NULL) puts
 * "recommend: PORT MODE" on the first line, never cut by the output cap,
 * and its sentence in the long output. NULL when out of memory. */
char *output_build(const struct check_opts *o, const struct sp_result *res,
                   int n, const struct sp_recommendation *rec, time_t now,
                   enum sp_state *state);

#endif /* NAGIOS_OUTPUT_H */
