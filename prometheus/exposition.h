/*
 * exposition.h - the Prometheus text exposition format 0.0.4 writer.
 *
 * A set collects samples grouped by family; rendering writes each family
 * once, in the order the families were declared: HELP, TYPE, then all its
 * samples in the order they were added. Families without samples are left
 * out. Names are checked, label values and HELP text escaped, duplicate
 * samples refused. Pure code: no I/O, no globals, unit-tested.
 */
#ifndef SMTP_EXPORTER_EXPOSITION_H
#define SMTP_EXPORTER_EXPOSITION_H

#include <stdbool.h>
#include <stddef.h>

/* The Content-Type of the text format. */
#define EXPO_CONTENT_TYPE "text/plain; version=0.0.4"

/* Most labels one sample may carry. */
#define EXPO_MAX_LABELS 8

/* Most bytes a rendered set may take (the response cap). */
#define EXPO_MAX_BYTES (4u * 1024u * 1024u)

/* Metric types the writer knows. */
enum expo_type {
  EXPO_GAUGE,   /* a value that goes up and down */
  EXPO_COUNTER, /* a monotonic count; its name must end in _total */
  EXPO_UNTYPED  /* no type information */
};

struct expo_set;

/* Create an empty set; NULL when out of memory. */
struct expo_set *expo_new(void);

/* Free a set and its samples. */
void expo_free(struct expo_set *set);

/* Declare a family. Declaring the same family again with the same type is
 * allowed (no-op); a different type, a bad name or a counter name without
 * _total is an error. Returns 0 or -1 (the set records the first error). */
int expo_family(struct expo_set *set, const char *name, enum expo_type type,
                const char *help);

/* Add a sample to a declared family. labels holds nlabels name/value pairs
 * (2 * nlabels strings). Returns 0 or -1 (unknown family, bad label name,
 * repeated label, duplicate sample, too big). */
int expo_addv(struct expo_set *set, const char *family, double value,
              const char *const *labels, int nlabels);

/* Add a sample; the variadic arguments are name, value pairs ended by a
 * NULL. */
int expo_add(struct expo_set *set, const char *family, double value, ...)
    __attribute__((sentinel));

/* The first error the set met, or NULL when none. */
const char *expo_error(const struct expo_set *set);

/* Render the set into a malloc'd NUL-terminated text (caller frees);
 * NULL when out of memory or over EXPO_MAX_BYTES. */
char *expo_render(const struct expo_set *set, size_t *len);

/* True when name is a valid metric name: [a-zA-Z_:][a-zA-Z0-9_:]*. */
bool expo_valid_metric_name(const char *name);

/* True when name is a valid label name: [a-zA-Z_][a-zA-Z0-9_]*, not
 * starting with "__" (reserved). */
bool expo_valid_label_name(const char *name);

/* Write a value as the format wants it: shortest round-trip decimal,
 * "NaN", "+Inf", "-Inf". Returns the length (truncated to fit). */
size_t expo_format_value(double value, char *buf, size_t buflen);

/* Escape a label value (\\ \" \n) into out; returns the length, or
 * (size_t)-1 when it did not fit. Invalid UTF-8 bytes become '?'. */
size_t expo_escape_label(const char *in, char *out, size_t outlen);

/* Escape HELP text (\\ \n) into out; same contract as expo_escape_label. */
size_t expo_escape_help(const char *in, char *out, size_t outlen);

#endif /* SMTP_EXPORTER_EXPOSITION_H */
