/*
 * exposition.c - the Prometheus text exposition format 0.0.4 writer
 * (see exposition.h).
 */
#include "exposition.h"

#include "smtp_probe.h" /* struct sp_buf */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most families one set may hold. */
#define EXPO_MAX_FAMILIES 128
/* Longest metric or label name accepted. */
#define EXPO_MAX_NAME 128
/* Longest escaped label value accepted. */
#define EXPO_MAX_VALUE 1024

/* Longest sample line: the name, every label with its escaped value,
 * the braces, the value and the newline. */
#define EXPO_MAX_LINE                                                          \
  (EXPO_MAX_NAME + EXPO_MAX_LABELS * (EXPO_MAX_NAME + EXPO_MAX_VALUE + 4) + 64)

/* One metric family and its samples, already rendered as lines; one
 * allocation with its HELP text. */
struct expo_family {
  char name[EXPO_MAX_NAME]; /* metric name */
  size_t name_len;          /* strlen(name) */
  enum expo_type type;      /* TYPE */
  struct sp_buf samples;    /* "name{labels} value\n" lines, in order */
  int nsamples;             /* how many lines samples holds */
  size_t help_len;          /* strlen(help) */
  char help[];              /* escaped HELP text */
};

/* A set of families in declaration order. */
struct expo_set {
  struct expo_family *families[EXPO_MAX_FAMILIES]; /* declared families */
  int nfamilies;                                   /* how many */
  int last;        /* index of the family found last (samples come in runs) */
  size_t total;    /* bytes of all samples, for the overall cap */
  size_t help;     /* bytes of all HELP texts, to size the rendering */
  char error[256]; /* the first error met, or "" */
  char line[EXPO_MAX_LINE]; /* where expo_addv builds a line (not zeroed):
                               on the heap, off the handler's stack */
};

/* Record the first error of a set; always returns -1. */
static int set_error(struct expo_set *set, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int set_error(struct expo_set *set, const char *fmt, ...) {
  if (set->error[0] != '\0')
    return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(set->error, sizeof(set->error), fmt, ap);
  va_end(ap);
  return -1;
}

/* Create an empty set; NULL when out of memory. */
struct expo_set *expo_new(void) {
  struct expo_set *set = malloc(sizeof(*set));
  if (set != NULL)
    memset(set, 0, offsetof(struct expo_set, line));
  return set;
}

/* Free a set and its samples. */
void expo_free(struct expo_set *set) {
  if (set == NULL)
    return;
  for (int i = 0; i < set->nfamilies; i++) {
    sp_buf_free(&set->families[i]->samples);
    free(set->families[i]);
  }
  free(set);
}

/* The first error the set met, or NULL when none. */
const char *expo_error(const struct expo_set *set) {
  return set->error[0] ? set->error : NULL;
}

/* True when c may start a metric name. */
static bool metric_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         c == ':';
}

/* True when c may continue a metric name. */
static bool metric_char(char c) {
  return metric_start(c) || (c >= '0' && c <= '9');
}

/* True when name is a valid metric name: [a-zA-Z_:][a-zA-Z0-9_:]*. */
bool expo_valid_metric_name(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n >= EXPO_MAX_NAME || !metric_start(name[0]))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!metric_char(name[i]))
      return false;
  return true;
}

/* True when name is a valid label name, not reserved ("__" prefix). */
bool expo_valid_label_name(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n >= EXPO_MAX_NAME || name[0] == ':' || !metric_start(name[0]))
    return false;
  if (n >= 2 && name[0] == '_' && name[1] == '_')
    return false;
  for (size_t i = 1; i < n; i++)
    if (name[i] == ':' || !metric_char(name[i]))
      return false;
  return true;
}

/* True when "%.*g" with prec reads back as value; the text is in tmp. */
static bool round_trips(double value, int prec, char *tmp, size_t tmplen) {
  snprintf(tmp, tmplen, "%.*g", prec, value);
  return strtod(tmp, NULL) == value;
}

/* The smallest precision 1..17 whose "%.*g" text reads back as value,
 * with that text in tmp. A precision that reads back makes every larger
 * one read back too (its correctly rounded text is at least as close to
 * value, on an interval around it that is symmetric unless value is a
 * power of two), so a search replaces trying 1..17 in turn; powers of two
 * keep the plain loop. Durations need 15-17 digits: 15 is tried first. */
static void shortest_g(double value, char *tmp, size_t tmplen) {
  int e;
  double m = frexp(value, &e);
  if (m == 0.5 || m == -0.5) { /* asymmetric interval: the plain loop */
    for (int prec = 1; prec <= 17; prec++)
      if (round_trips(value, prec, tmp, tmplen))
        return;
    snprintf(tmp, tmplen, "%.17g", value);
    return;
  }
  int lo = 1, hi = 17; /* the answer is in [lo, hi]; 17 always reads back */
  if (round_trips(value, 15, tmp, tmplen))
    hi = 15;
  else
    lo = 16;
  while (lo < hi) {
    int mid = lo == 16 || hi == 15 ? hi - 1 : (lo + hi) / 2;
    if (round_trips(value, mid, tmp, tmplen))
      hi = mid;
    else
      lo = mid + 1;
  }
  round_trips(value, lo, tmp, tmplen); /* leave the answer's text in tmp */
}

/* Write |v| < 1e15, a whole number, as "%.0f" would: its digits. */
static size_t format_integer(double value, char *buf, size_t buflen) {
  long long v = (long long)value;
  char digits[24];
  size_t n = 0;
  unsigned long long u =
      v < 0 ? (unsigned long long)(-v) : (unsigned long long)v;
  do {
    digits[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (v < 0)
    digits[n++] = '-';
  size_t o = 0;
  for (; o < n && o + 1 < buflen; o++)
    buf[o] = digits[n - 1 - o];
  if (buflen)
    buf[o] = '\0';
  return n; /* what snprintf would return */
}

/* Write a value: shortest round-trip decimal, NaN, +Inf, -Inf. */
size_t expo_format_value(double value, char *buf, size_t buflen) {
  int n;
  if (isnan(value))
    n = snprintf(buf, buflen, "NaN");
  else if (isinf(value))
    n = snprintf(buf, buflen, value > 0 ? "+Inf" : "-Inf");
  else if (value == floor(value) && fabs(value) < 1e15)
    n = (int)format_integer(value, buf, buflen);
  else {
    char tmp[64];
    shortest_g(value, tmp, sizeof(tmp));
    n = snprintf(buf, buflen, "%s", tmp);
  }
  if (n < 0)
    return 0;
  return (size_t)n < buflen ? (size_t)n : (buflen ? buflen - 1 : 0);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s) {
  if (s[0] < 0x80)
    return 1;
  size_t n;
  unsigned min;
  unsigned cp;
  if ((s[0] & 0xe0) == 0xc0) {
    n = 2, min = 0x80, cp = s[0] & 0x1f;
  } else if ((s[0] & 0xf0) == 0xe0) {
    n = 3, min = 0x800, cp = s[0] & 0x0f;
  } else if ((s[0] & 0xf8) == 0xf0) {
    n = 4, min = 0x10000, cp = s[0] & 0x07;
  } else {
    return 0;
  }
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

/* Escape in into out: backslash and newline always, the double quote when
 * quote is set; other control bytes and invalid UTF-8 become '?'. */
static size_t escape(const char *in, bool quote, char *out, size_t outlen) {
  size_t o = 0;
  const unsigned char *s = (const unsigned char *)in;
  while (*s) {
    if (*s >= 0x20 && *s < 0x7f && *s != '\\' && *s != '"') {
      if (o + 2 > outlen) /* the plain printable byte, the common case */
        return (size_t)-1;
      out[o++] = (char)*s++;
      continue;
    }
    char tmp[4];
    size_t tn;
    size_t step = 1;
    if (*s == '\\') {
      tmp[0] = '\\', tmp[1] = '\\', tn = 2;
    } else if (*s == '\n') {
      tmp[0] = '\\', tmp[1] = 'n', tn = 2;
    } else if (*s == '"' && quote) {
      tmp[0] = '\\', tmp[1] = '"', tn = 2;
    } else if (*s < 0x20 || *s == 0x7f) {
      tmp[0] = '?', tn = 1;
    } else {
      step = utf8_len(s);
      if (step == 0) {
        tmp[0] = '?', tn = 1, step = 1;
      } else {
        memcpy(tmp, s, step);
        tn = step;
      }
    }
    if (o + tn + 1 > outlen)
      return (size_t)-1;
    memcpy(out + o, tmp, tn);
    o += tn;
    s += step;
  }
  if (outlen == 0)
    return (size_t)-1;
  out[o] = '\0';
  return o;
}

/* Escape a label value (\\ \" \n) into out. */
size_t expo_escape_label(const char *in, char *out, size_t outlen) {
  return escape(in, true, out, outlen);
}

/* Escape HELP text (\\ \n) into out. */
size_t expo_escape_help(const char *in, char *out, size_t outlen) {
  return escape(in, false, out, outlen);
}

/* Find a declared family by name, or NULL; the one found last is tried
 * first (a family's samples are mostly added in a run). */
static struct expo_family *find_family(struct expo_set *set, const char *name) {
  if (set->last < set->nfamilies &&
      strcmp(set->families[set->last]->name, name) == 0)
    return set->families[set->last];
  for (int i = 0; i < set->nfamilies; i++) {
    if (strcmp(set->families[i]->name, name) == 0) {
      set->last = i;
      return set->families[i];
    }
  }
  return NULL;
}

/* True when name ends with suffix. */
static bool ends_with(const char *name, const char *suffix) {
  size_t n = strlen(name);
  size_t s = strlen(suffix);
  return n >= s && strcmp(name + n - s, suffix) == 0;
}

/* Declare a family (see exposition.h). */
int expo_family(struct expo_set *set, const char *name, enum expo_type type,
                const char *help) {
  if (!expo_valid_metric_name(name))
    return set_error(set, "invalid metric name \"%.64s\"", name);
  struct expo_family *fam = find_family(set, name);
  if (fam != NULL) {
    if (fam->type != type)
      return set_error(set, "family %s declared again with another type", name);
    return 0;
  }
  if (type == EXPO_COUNTER && !ends_with(name, "_total"))
    return set_error(set, "counter %s does not end in _total", name);
  if (type != EXPO_COUNTER && ends_with(name, "_total"))
    return set_error(set, "non-counter %s ends in _total", name);
  if (set->nfamilies >= EXPO_MAX_FAMILIES)
    return set_error(set, "too many families");
  char esc[1024];
  size_t elen = expo_escape_help(help, esc, sizeof(esc));
  if (elen == (size_t)-1)
    return set_error(set, "HELP of %s too long", name);
  fam = malloc(sizeof(*fam) + elen + 1);
  if (fam == NULL)
    return set_error(set, "out of memory");
  memset(fam, 0, sizeof(*fam));
  memcpy(fam->help, esc, elen + 1);
  fam->help_len = elen;
  fam->name_len = strlen(name); /* < EXPO_MAX_NAME: checked above */
  memcpy(fam->name, name, fam->name_len + 1);
  set->help += elen;
  fam->type = type;
  sp_buf_init(&fam->samples, EXPO_MAX_BYTES - 1); /* EXPO_MAX_BYTES with NUL */
  set->families[set->nfamilies++] = fam;
  return 0;
}

/* True when the family already holds a line starting with prefix. */
static bool has_sample(const struct expo_family *fam, const char *prefix,
                       size_t plen) {
  const char *p = sp_buf_str(&fam->samples);
  while (*p) {
    if (strncmp(p, prefix, plen) == 0)
      return true;
    const char *nl = strchr(p, '\n');
    if (nl == NULL)
      break;
    p = nl + 1;
  }
  return false;
}

/* Add a sample to a declared family (see exposition.h). The line is built
 * in the set's scratch line, then appended to the family's lines. */
int expo_addv(struct expo_set *set, const char *family, double value,
              const char *const *labels, int nlabels) {
  struct expo_family *fam = find_family(set, family);
  if (fam == NULL)
    return set_error(set, "sample for undeclared family %.64s", family);
  if (nlabels < 0 || nlabels > EXPO_MAX_LABELS)
    return set_error(set, "%s: too many labels", family);
  char *line = set->line;
  size_t len = fam->name_len;
  memcpy(line, fam->name, len);
  for (int i = 0; i < nlabels; i++) {
    const char *lname = labels[2 * i];
    const char *lvalue = labels[2 * i + 1];
    if (lname == NULL || lvalue == NULL || !expo_valid_label_name(lname))
      return set_error(set, "%s: invalid label name \"%.64s\"", family,
                       lname ? lname : "(null)");
    for (int j = 0; j < i; j++)
      if (strcmp(labels[2 * j], lname) == 0)
        return set_error(set, "%s: label %s repeated", family, lname);
    size_t nlen = strlen(lname); /* < EXPO_MAX_NAME: checked above */
    line[len++] = i == 0 ? '{' : ',';
    memcpy(line + len, lname, nlen);
    len += nlen;
    line[len++] = '=';
    line[len++] = '"';
    size_t vlen = expo_escape_label(lvalue, line + len, EXPO_MAX_VALUE);
    if (vlen == (size_t)-1)
      return set_error(set, "%s: value of label %s too long", family, lname);
    len += vlen;
    line[len++] = '"';
  }
  if (nlabels > 0)
    line[len++] = '}';
  line[len++] = ' ';
  line[len] = '\0';
  if (has_sample(fam, line, len))
    return set_error(set, "duplicate sample %.200s", line);
  len += expo_format_value(value, line + len, 64);
  line[len++] = '\n';
  line[len] = '\0';
  int rc = 0;
  if (set->total + len > EXPO_MAX_BYTES ||
      sp_buf_add(&fam->samples, line, len) < 0)
    rc = set_error(set, "%s: sample too big or out of memory", family);
  else
    set->total += len;
  fam->nsamples += rc == 0;
  return rc;
}

/* Add a sample with NULL-terminated name, value pairs. */
int expo_add(struct expo_set *set, const char *family, double value, ...) {
  const char *labels[2 * EXPO_MAX_LABELS];
  int n = 0;
  va_list ap;
  va_start(ap, value);
  for (;;) {
    const char *name = va_arg(ap, const char *);
    if (name == NULL)
      break;
    const char *val = va_arg(ap, const char *);
    if (n >= EXPO_MAX_LABELS) {
      va_end(ap);
      return set_error(set, "%s: too many labels", family);
    }
    labels[2 * n] = name;
    labels[2 * n + 1] = val;
    n++;
  }
  va_end(ap);
  return expo_addv(set, family, value, labels, n);
}

/* The word a type has on a TYPE line. */
static const char *type_word(enum expo_type type) {
  switch (type) {
  case EXPO_GAUGE:
    return "gauge";
  case EXPO_COUNTER:
    return "counter";
  default:
    return "untyped";
  }
}

/* Render the set into a malloc'd text (see exposition.h). */
char *expo_render(const struct expo_set *set, size_t *len) {
  struct sp_buf out;
  sp_buf_init(&out, EXPO_MAX_BYTES + 64 * 1024 - 1);
  /* one allocation of the right size: every family's two comment lines
   * (2 * name + help + at most 25 bytes) and its samples */
  size_t want = set->total + set->help +
                (size_t)set->nfamilies * (2 * EXPO_MAX_NAME + 32) + 1;
  if (want <= out.limit + 1 && (out.data = malloc(want)) != NULL) {
    out.alloc = want;
    out.data[0] = '\0';
  }
  for (int i = 0; i < set->nfamilies; i++) {
    const struct expo_family *fam = set->families[i];
    if (fam->nsamples == 0)
      continue;
    const char *type = type_word(fam->type);
    sp_buf_add(&out, "# HELP ", 7);
    sp_buf_add(&out, fam->name, fam->name_len);
    sp_buf_add(&out, " ", 1);
    sp_buf_add(&out, fam->help, fam->help_len);
    sp_buf_add(&out, "\n# TYPE ", 8);
    sp_buf_add(&out, fam->name, fam->name_len);
    sp_buf_add(&out, " ", 1);
    sp_buf_add(&out, type, strlen(type));
    sp_buf_add(&out, "\n", 1);
    sp_buf_add(&out, sp_buf_str(&fam->samples), fam->samples.len);
  }
  if (out.failed) {
    sp_buf_free(&out);
    return NULL;
  }
  return sp_buf_take(&out, len);
}
