/*
 * fileio.h - small helpers shared by the exporter's configuration readers
 * (modules file, web config) and its flag parsing.
 */
#ifndef SMTP_EXPORTER_FILEIO_H
#define SMTP_EXPORTER_FILEIO_H

#include <stdarg.h>
#include <stddef.h>
#include <yaml.h>

/* Read a whole regular file of at most max bytes into a NUL-terminated
 * string (the caller frees it) and its length. NULL with the reason in
 * why (not naming the file) when it cannot be opened, is not a regular
 * file, is larger than max, or memory runs out. */
char *fileio_read(const char *path, size_t max, size_t *len, char *why,
                  size_t whylen);

/* Parse a whole decimal number in [min, max] (no sign, no spaces);
 * 0, or -1 when it is not one. */
int fileio_parse_long(const char *s, long min, long max, long *out);

/* Write "NAME:LINE:COL: message" for a YAML node into err (the file's
 * name shortened to 256 bytes); returns -1, for "return error(...)". */
int fileio_yaml_error(char *err, size_t errlen, const char *name,
                      const yaml_node_t *node, const char *fmt, va_list ap);

#endif /* SMTP_EXPORTER_FILEIO_H */
