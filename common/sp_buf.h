/*
 * sp_buf.h - the growable byte/text buffer of the whole tree (buffer.c):
 * it grows on demand but never past the cap it was started with.
 *
 * Two kinds of append share one type:
 *  - sp_buf_append, for byte streams (the core's socket buffers): all or
 *    nothing, -1 when refused, and later appends are tried as usual;
 *  - the text appends sp_buf_add, sp_buf_puts, sp_buf_printf and
 *    sp_buf_add_clean: all or nothing too, but the first refusal sets
 *    failed and every later text append is ignored, so callers write
 *    straight-line code and check failed once at the end (the text is
 *    then cut at an append boundary).
 *
 * Part of the public API: included by smtp_probe.h (adapters include that).
 */
#ifndef SP_BUF_H
#define SP_BUF_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A byte buffer that grows on demand up to a hard limit. */
struct sp_buf {
  char *data;   /* bytes, NUL-terminated once anything was added */
  size_t len;   /* bytes used, without the NUL */
  size_t alloc; /* bytes allocated */
  size_t limit; /* never holds more than this many bytes (NUL not counted) */
  bool failed;  /* an append was refused (cap or memory); sticky for text */
};

/* Start an empty buffer that may hold up to limit bytes. */
void sp_buf_init(struct sp_buf *b, size_t limit);

/* Append n bytes; -1 (buffer unchanged) when that would pass the cap. */
int sp_buf_append(struct sp_buf *b, const void *data, size_t n);

/* Drop the first n bytes. */
void sp_buf_consume(struct sp_buf *b, size_t n);

/* Free the buffer's memory; it is empty (same cap, not failed) after. */
void sp_buf_free(struct sp_buf *b);

/* Text append of n bytes: 0, or -1 (and failed set) when refused or
 * when an earlier text append failed. */
int sp_buf_add(struct sp_buf *b, const char *s, size_t n);

/* Text append of a NUL-terminated string (as sp_buf_add). */
int sp_buf_puts(struct sp_buf *b, const char *s);

/* Text append of printf-formatted text (as sp_buf_add). */
int sp_buf_printf(struct sp_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Flags of sp_buf_add_clean. */
enum sp_buf_clean {
  SP_CLEAN_SPACES = 1u << 0, /* tab, CR and LF become ' ' (else '?') */
  SP_CLEAN_NO_PIPE = 1u << 1 /* '|' becomes '/' (Nagios perfdata split) */
};

/* Text append of n bytes made printable ASCII: every byte outside
 * 0x20..0x7e becomes '?' (see flags); as sp_buf_add otherwise. */
int sp_buf_add_clean(struct sp_buf *b, const char *s, size_t n, unsigned flags);

/* The text so far ("" when nothing was added). */
const char *sp_buf_str(const struct sp_buf *b);

/* Hand the text over to the caller (free() it; "" when nothing was
 * added, NULL only when out of memory) and its length; the buffer is
 * empty (same cap, not failed) after. */
char *sp_buf_take(struct sp_buf *b, size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* SP_BUF_H */
