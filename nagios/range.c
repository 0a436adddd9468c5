/*
 * range.c - Nagios threshold range parsing and evaluation.
 */
#include "range.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse one bound (a plain decimal number) from s[0..len); 0 or -1. */
static int parse_bound(const char *s, size_t len, double *out) {
  char tmp[RANGE_MAX_TEXT];
  char *end = NULL;

  if (len == 0 || len >= sizeof(tmp))
    return -1;
  memcpy(tmp, s, len);
  tmp[len] = '\0';
  /* Only digits, one sign, a dot: refuse "inf", "nan", hex, exponents. */
  for (size_t i = 0; i < len; i++) {
    char c = tmp[i];
    if (!((c >= '0' && c <= '9') || c == '.' ||
          ((c == '-' || c == '+') && i == 0)))
      return -1;
  }
  errno = 0;
  *out = strtod(tmp, &end);
  if (errno != 0 || end != tmp + len || !isfinite(*out))
    return -1;
  return 0;
}

/* Parse a range string; 0 on success, -1 with a message in err. */
int range_parse(const char *s, struct range *r, char *err, size_t errlen) {
  const char *p = s;
  const char *colon;
  size_t len;

  memset(r, 0, sizeof(*r));
  r->end_inf = true;
  len = s ? strlen(s) : 0;
  if (len == 0 || len >= sizeof(r->text)) {
    snprintf(err, errlen, "range is empty or longer than %d characters",
             RANGE_MAX_TEXT - 1);
    return -1;
  }
  memcpy(r->text, s, len + 1);

  if (*p == '@') {
    r->inside = true;
    p++;
  }
  colon = strchr(p, ':');
  if (colon == NULL) {
    /* "10": 0..10 */
    if (parse_bound(p, strlen(p), &r->end) != 0)
      goto bad;
    r->end_inf = false;
  } else {
    size_t slen = (size_t)(colon - p);
    const char *e = colon + 1;
    if (slen == 1 && p[0] == '~')
      r->start_inf = true;
    else if (slen > 0 && parse_bound(p, slen, &r->start) != 0)
      goto bad;
    if (slen == 0 && *e == '\0')
      goto bad;
    if (*e != '\0') {
      if (parse_bound(e, strlen(e), &r->end) != 0)
        goto bad;
      r->end_inf = false;
    }
  }
  if (!r->start_inf && !r->end_inf && r->start > r->end) {
    snprintf(err, errlen, "range '%s': start is greater than end", s);
    return -1;
  }
  return 0;

bad:
  snprintf(err, errlen,
           "range '%s' is not [@][start:][end] with decimal numbers", s);
  return -1;
}

/* True when value raises an alert under range r. */
bool range_alerts(const struct range *r, double value) {
  bool below = !r->start_inf && value < r->start;
  bool above = !r->end_inf && value > r->end;
  bool outside = below || above;

  return r->inside ? !outside : outside;
}

/* Format a bound in fixed point without trailing zeros ("1.5", "10"). */
static void format_bound(double v, char *buf, size_t buflen) {
  size_t len;

  snprintf(buf, buflen, "%.6f", v);
  len = strlen(buf);
  while (len > 0 && buf[len - 1] == '0')
    buf[--len] = '\0';
  if (len > 0 && buf[len - 1] == '.')
    buf[--len] = '\0';
}

/* Describe why value alerts under r into buf; returns the length written. */
size_t range_explain(const struct range *r, double value, char *buf,
                     size_t buflen) {
  char bound[64];
  int n;

  if (buflen == 0)
    return 0;
  if (r->inside)
    n = snprintf(buf, buflen, "inside %s", r->text);
  else if (!r->end_inf && value > r->end) {
    format_bound(r->end, bound, sizeof(bound));
    n = snprintf(buf, buflen, "> %s", bound);
  } else if (!r->start_inf && value < r->start) {
    format_bound(r->start, bound, sizeof(bound));
    n = snprintf(buf, buflen, "< %s", bound);
  } else
    n = snprintf(buf, buflen, "outside %s", r->text);
  if (n < 0)
    n = 0;
  return (size_t)n < buflen ? (size_t)n : buflen - 1;
}
