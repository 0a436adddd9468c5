/*
 * yamlerr.h - error messages that point into a YAML file, shared by the
 * exporter's YAML readers (modules file, web config).
 */
#ifndef SMTP_EXPORTER_YAMLERR_H
#define SMTP_EXPORTER_YAMLERR_H

#include <stdarg.h>
#include <stddef.h>
#include <yaml.h>

/* Write "NAME:LINE:COL: message" for a YAML node into err (the file's
 * name shortened to 256 bytes); returns -1, for "return error(...)". */
int yamlerr_node(char *err, size_t errlen, const char *name,
                 const yaml_node_t *node, const char *fmt, va_list ap);

#endif /* SMTP_EXPORTER_YAMLERR_H */
