/*
 * strbuf.h - a growable, capped text buffer for the exporter's responses.
 *
 * Every append is bounded by the buffer's cap; once an append fails the
 * buffer remembers it (oom) and later appends are ignored, so callers can
 * write straight-line code and check once at the end.
 */
#ifndef SMTP_EXPORTER_STRBUF_H
#define SMTP_EXPORTER_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

/* A NUL-terminated growable string with a hard size cap. */
struct strbuf {
  char *data;  /* the text, always NUL-terminated once anything was added */
  size_t len;  /* bytes used, without the NUL */
  size_t size; /* bytes allocated */
  size_t cap;  /* most bytes the buffer may ever hold, NUL included */
  bool failed; /* an append did not fit or allocation failed */
};

/* Start an empty buffer that may grow up to cap bytes. */
void sb_init(struct strbuf *sb, size_t cap);

/* Release the buffer's memory and reset it to empty. */
void sb_free(struct strbuf *sb);

/* Append n bytes. Returns 0, or -1 (and sets failed) when over the cap. */
int sb_addn(struct strbuf *sb, const char *s, size_t n);

/* Append a NUL-terminated string. */
int sb_add(struct strbuf *sb, const char *s);

/* Append printf-formatted text. */
int sb_printf(struct strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The text so far ("" when nothing was added). */
const char *sb_str(const struct strbuf *sb);

/* Hand the text over to the caller (free() it); the buffer becomes empty. */
char *sb_take(struct strbuf *sb, size_t *len);

#endif /* SMTP_EXPORTER_STRBUF_H */
