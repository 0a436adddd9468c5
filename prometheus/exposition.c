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

/* One metric family and its samples, already rendered as lines. */
struct expo_family {
  char name[EXPO_MAX_NAME]; /* metric name */
  char *help;               /* escaped HELP text */
  enum expo_type type;      /* TYPE */
  struct sp_buf samples;    /* "name{labels} value\n" lines, in order */
  int nsamples;             /* how many lines samples holds */
};

/* A set of families in declaration order. */
struct expo_set {
  struct expo_family *families[EXPO_MAX_FAMILIES]; /* declared families */
  int nfamilies;                                   /* how many */
  size_t total;    /* bytes of all samples, for the overall cap */
  char error[256]; /* the first error met, or "" */
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
  return calloc(1, sizeof(struct expo_set));
}

/* Free a set and its samples. */
void expo_free(struct expo_set *set) {
  if (set == NULL)
    return;
  for (int i = 0; i < set->nfamilies; i++) {
    sp_buf_free(&set->families[i]->samples);
    free(set->families[i]->help);
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

/* Write a value: shortest round-trip decimal, NaN, +Inf, -Inf. */
size_t expo_format_value(double value, char *buf, size_t buflen) {
  int n;
  if (isnan(value))
    n = snprintf(buf, buflen, "NaN");
  else if (isinf(value))
    n = snprintf(buf, buflen, value > 0 ? "+Inf" : "-Inf");
  else if (value == floor(value) && fabs(value) < 1e15)
    n = snprintf(buf, buflen, "%.0f", value == 0 ? 0.0 : value);
  else {
    n = snprintf(buf, buflen, "%.17g", value);
    for (int prec = 1; prec <= 17; prec++) {
      char tmp[64];
      snprintf(tmp, sizeof(tmp), "%.*g", prec, value);
      if (strtod(tmp, NULL) == value) {
        n = snprintf(buf, buflen, "%s", tmp);
        break;
      }
    }
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

/* Find a declared family by name, or NULL. */
static struct expo_family *find_family(const struct expo_set *set,
                                       const char *name) {
  for (int i = 0; i < set->nfamilies; i++)
    if (strcmp(set->families[i]->name, name) == 0)
      return set->families[i];
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
  if (expo_escape_help(help, esc, sizeof(esc)) == (size_t)-1)
    return set_error(set, "HELP of %s too long", name);
  fam = calloc(1, sizeof(*fam));
  if (fam == NULL || (fam->help = strdup(esc)) == NULL) {
    free(fam);
    return set_error(set, "out of memory");
  }
  snprintf(fam->name, sizeof(fam->name), "%s", name);
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

/* Add a sample to a declared family (see exposition.h). */
int expo_addv(struct expo_set *set, const char *family, double value,
              const char *const *labels, int nlabels) {
  struct expo_family *fam = find_family(set, family);
  if (fam == NULL)
    return set_error(set, "sample for undeclared family %.64s", family);
  if (nlabels < 0 || nlabels > EXPO_MAX_LABELS)
    return set_error(set, "%s: too many labels", family);
  struct sp_buf line;
  sp_buf_init(&line,
              EXPO_MAX_NAME +
                  EXPO_MAX_LABELS * (EXPO_MAX_NAME + EXPO_MAX_VALUE + 4) + 63);
  sp_buf_puts(&line, fam->name);
  for (int i = 0; i < nlabels; i++) {
    const char *lname = labels[2 * i];
    const char *lvalue = labels[2 * i + 1];
    if (lname == NULL || lvalue == NULL || !expo_valid_label_name(lname)) {
      sp_buf_free(&line);
      return set_error(set, "%s: invalid label name \"%.64s\"", family,
                       lname ? lname : "(null)");
    }
    for (int j = 0; j < i; j++) {
      if (strcmp(labels[2 * j], lname) == 0) {
        sp_buf_free(&line);
        return set_error(set, "%s: label %s repeated", family, lname);
      }
    }
    char esc[EXPO_MAX_VALUE];
    if (expo_escape_label(lvalue, esc, sizeof(esc)) == (size_t)-1) {
      sp_buf_free(&line);
      return set_error(set, "%s: value of label %s too long", family, lname);
    }
    sp_buf_printf(&line, "%s%s=\"%s\"", i == 0 ? "{" : ",", lname, esc);
  }
  if (nlabels > 0)
    sp_buf_puts(&line, "}");
  sp_buf_puts(&line, " ");
  size_t prefix_len = line.len;
  if (has_sample(fam, sp_buf_str(&line), prefix_len)) {
    int rc = set_error(set, "duplicate sample %.200s", sp_buf_str(&line));
    sp_buf_free(&line);
    return rc;
  }
  char num[64];
  expo_format_value(value, num, sizeof(num));
  sp_buf_puts(&line, num);
  sp_buf_puts(&line, "\n");
  int rc = 0;
  if (line.failed || set->total + line.len > EXPO_MAX_BYTES ||
      sp_buf_add(&fam->samples, line.data, line.len) < 0)
    rc = set_error(set, "%s: sample too big or out of memory", family);
  else
    set->total += line.len;
  fam->nsamples += rc == 0;
  sp_buf_free(&line);
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
  for (int i = 0; i < set->nfamilies; i++) {
    const struct expo_family *fam = set->families[i];
    if (fam->nsamples == 0)
      continue;
    sp_buf_printf(&out, "# HELP %s %s\n", fam->name, fam->help);
    sp_buf_printf(&out, "# TYPE %s %s\n", fam->name, type_word(fam->type));
    sp_buf_add(&out, sp_buf_str(&fam->samples), fam->samples.len);
  }
  if (out.failed) {
    sp_buf_free(&out);
    return NULL;
  }
  return sp_buf_take(&out, len);
}
