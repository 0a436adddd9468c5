/*
 * number.c - strict decimal number parsing (see number.h).
 */
#include "number.h"

#include <errno.h>
#include <stdlib.h>

/* Parse a whole decimal number in [min, max]. */
int number_parse_long(const char *s, long min, long max, long *out) {
  if (s[0] == '\0' || s[0] == ' ' || s[0] == '+')
    return -1;
  errno = 0;
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}
