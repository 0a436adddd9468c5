/*
 * range.h - Nagios threshold ranges: parse "[@]start:end" and tell whether
 * a value raises an alert.
 *
 * Syntax (Monitoring Plugins guidelines), inclusive at both ends:
 *   10      alert outside 0..10        10:     alert below 10
 *   ~:10    alert above 10             10:20   alert outside 10..20
 *   @10:20  alert inside 10..20        start defaults to 0, "~" = -infinity,
 *                                      an empty end = +infinity
 */
#ifndef NAGIOS_RANGE_H
#define NAGIOS_RANGE_H

#include <stdbool.h>
#include <stddef.h>

#define RANGE_MAX_TEXT 64 /* longest range string accepted, with its NUL */

/* One parsed threshold range. */
struct range {
  double start;              /* lower bound (ignored when start_inf) */
  double end;                /* upper bound (ignored when end_inf) */
  bool start_inf;            /* "~": no lower bound */
  bool end_inf;              /* empty end: no upper bound */
  bool inside;               /* "@": alert inside the range, not outside */
  char text[RANGE_MAX_TEXT]; /* the string as the user gave it */
};

/* Parse a range string; 0 on success, -1 with a message in err. */
int range_parse(const char *s, struct range *r, char *err, size_t errlen);

/* True when value raises an alert under range r. */
bool range_alerts(const struct range *r, double value);

/* Describe why value alerts under r ("> 10", "< 5", "inside @1:2") into
 * buf; returns the length written. */
size_t range_explain(const struct range *r, double value, char *buf,
                     size_t buflen);

#endif /* NAGIOS_RANGE_H */
