/*
 * yamlerr.c - "NAME:LINE:COL: message" errors for YAML nodes (see
 * yamlerr.h).
 */
#include "yamlerr.h"

#include <stdio.h>

/* Write "NAME:LINE:COL: message" for a YAML node. */
int yamlerr_node(char *err, size_t errlen, const char *name,
                 const yaml_node_t *node, const char *fmt, va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  snprintf(err, errlen, "%.256s:%lu:%lu: %s", name,
           (unsigned long)node->start_mark.line + 1,
           (unsigned long)node->start_mark.column + 1, msg);
  return -1;
}
