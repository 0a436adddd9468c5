/*
 * buffer.c - the capped growable buffer (sp_buf.h), sanitising and the
 * dialogue log (buffer.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"
#include "smtp_probe.h"

/* Start an empty buffer with a cap. */
void sp_buf_init(struct sp_buf *b, size_t limit) {
  b->data = NULL;
  b->len = 0;
  b->alloc = 0;
  b->limit = limit;
  b->failed = false;
}

/* Make room for n more bytes and the NUL; -1 (failed set) when that would
 * pass the cap or memory runs out. */
static int reserve(struct sp_buf *b, size_t n) {
  if (n > b->limit || b->len > b->limit - n) {
    b->failed = true;
    return -1;
  }
  if (b->len + n + 1 > b->alloc) {
    size_t want = b->alloc ? b->alloc : 256;
    while (want < b->len + n + 1)
      want *= 2;
    if (want > b->limit + 1)
      want = b->limit + 1;
    char *p = realloc(b->data, want);
    if (!p) {
      b->failed = true;
      return -1;
    }
    b->data = p;
    b->alloc = want;
  }
  return 0;
}

/* Append n bytes unless that would pass the cap. */
int sp_buf_append(struct sp_buf *b, const void *data, size_t n) {
  if (reserve(b, n) != 0)
    return -1;
  if (n > 0)
    memcpy(b->data + b->len, data, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

/* Drop the first n bytes. */
void sp_buf_consume(struct sp_buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
  } else {
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
  }
  if (b->data)
    b->data[b->len] = '\0';
}

/* Free the buffer's memory. */
void sp_buf_free(struct sp_buf *b) {
  free(b->data);
  sp_buf_init(b, b->limit);
}

/* Text append of n bytes; ignored once a text append failed. */
int sp_buf_add(struct sp_buf *b, const char *s, size_t n) {
  if (b->failed)
    return -1;
  return sp_buf_append(b, s, n);
}

/* Text append of a NUL-terminated string. */
int sp_buf_puts(struct sp_buf *b, const char *s) {
  return sp_buf_add(b, s, strlen(s));
}

/* Text append of printf-formatted text. */
int sp_buf_printf(struct sp_buf *b, const char *fmt, ...) {
  if (b->failed)
    return -1;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = true;
    return -1;
  }
  if (reserve(b, (size_t)n) != 0)
    return -1;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, b->alloc - b->len, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

/* Text append of n bytes made printable ASCII. */
int sp_buf_add_clean(struct sp_buf *b, const char *s, size_t n,
                     unsigned flags) {
  if (b->failed || reserve(b, n) != 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char out = (char)c;
    if (c == '|' && (flags & SP_CLEAN_NO_PIPE))
      out = '/';
    else if ((c == '\t' || c == '\r' || c == '\n') && (flags & SP_CLEAN_SPACES))
      out = ' ';
    else if (c < 0x20 || c >= 0x7f)
      out = '?';
    b->data[b->len + i] = out;
  }
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

/* The text so far ("" when nothing was added). */
const char *sp_buf_str(const struct sp_buf *b) {
  return b->data ? b->data : "";
}

/* Hand the text over to the caller; the buffer becomes empty. */
char *sp_buf_take(struct sp_buf *b, size_t *len) {
  char *data = b->data ? b->data : calloc(1, 1);
  if (len)
    *len = b->len;
  sp_buf_init(b, b->limit);
  return data;
}

/* Copy replacing non-printable bytes with '?'. */
size_t sp_sanitize(char *dst, size_t dstlen, const char *src, size_t srclen) {
  size_t o = 0;
  if (dstlen == 0)
    return 0;
  for (size_t i = 0; i < srclen && o + 1 < dstlen; i++) {
    unsigned char c = (unsigned char)src[i];
    dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  dst[o] = '\0';
  return o;
}

/* Bounded copy of a C string. */
void sp_strlcpy(char *dst, const char *src, size_t dstlen) {
  if (dstlen == 0)
    return;
  size_t n = strnlen(src, dstlen - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* Append one sanitised dialogue line to a transcript. */
void sp_transcript_add(struct sp_buf *t, const char *prefix, const char *data,
                       size_t len) {
  static const char marker[] = "[transcript truncated]\n";
  char line[SP_MAX_LINE + 8];
  if (!t || t->limit == 0)
    return;
  size_t plen = strlen(prefix);
  if (plen > 8)
    plen = 8;
  memcpy(line, prefix, plen);
  size_t n =
      plen + sp_sanitize(line + plen, sizeof(line) - plen - 1, data, len);
  line[n++] = '\n';
  if (t->len + n + sizeof(marker) > t->limit) {
    if (t->len + sizeof(marker) - 1 <= t->limit &&
        (t->len < sizeof(marker) ||
         memcmp(t->data + t->len - (sizeof(marker) - 1), marker,
                sizeof(marker) - 1) != 0))
      sp_buf_append(t, marker, sizeof(marker) - 1);
    return;
  }
  sp_buf_append(t, line, n);
}
