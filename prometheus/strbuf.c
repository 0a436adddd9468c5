/*
 * strbuf.c - a growable, capped text buffer (see strbuf.h).
 */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Start an empty buffer that may grow up to cap bytes. */
void sb_init(struct strbuf *sb, size_t cap) {
  sb->data = NULL;
  sb->len = 0;
  sb->size = 0;
  sb->cap = cap;
  sb->failed = false;
}

/* Release the buffer's memory and reset it to empty. */
void sb_free(struct strbuf *sb) {
  free(sb->data);
  sb_init(sb, sb->cap);
}

/* Make room for need more bytes plus the NUL; -1 when over the cap. */
static int sb_reserve(struct strbuf *sb, size_t need) {
  if (sb->failed)
    return -1;
  if (need >= sb->cap || sb->len + need + 1 > sb->cap) {
    sb->failed = true;
    return -1;
  }
  if (sb->len + need + 1 <= sb->size)
    return 0;
  size_t size = sb->size ? sb->size : 256;
  while (size < sb->len + need + 1)
    size *= 2;
  if (size > sb->cap)
    size = sb->cap;
  char *data = realloc(sb->data, size);
  if (data == NULL) {
    sb->failed = true;
    return -1;
  }
  sb->data = data;
  sb->size = size;
  return 0;
}

/* Append n bytes. Returns 0, or -1 (and sets failed) when over the cap. */
int sb_addn(struct strbuf *sb, const char *s, size_t n) {
  if (sb_reserve(sb, n) < 0)
    return -1;
  memcpy(sb->data + sb->len, s, n);
  sb->len += n;
  sb->data[sb->len] = '\0';
  return 0;
}

/* Append a NUL-terminated string. */
int sb_add(struct strbuf *sb, const char *s) {
  return sb_addn(sb, s, strlen(s));
}

/* Append printf-formatted text. */
int sb_printf(struct strbuf *sb, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || sb_reserve(sb, (size_t)n) < 0) {
    sb->failed = true;
    return -1;
  }
  va_start(ap, fmt);
  vsnprintf(sb->data + sb->len, sb->size - sb->len, fmt, ap);
  va_end(ap);
  sb->len += (size_t)n;
  return 0;
}

/* The text so far ("" when nothing was added). */
const char *sb_str(const struct strbuf *sb) {
  return sb->data ? sb->data : "";
}

/* Hand the text over to the caller (free() it); the buffer becomes empty. */
char *sb_take(struct strbuf *sb, size_t *len) {
  char *data = sb->data;
  if (data == NULL)
    data = calloc(1, 1);
  if (len)
    *len = sb->len;
  sb_init(sb, sb->cap);
  return data;
}
