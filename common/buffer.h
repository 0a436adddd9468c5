/*
 * buffer.h - growable byte buffers that always carry a cap, and transcripts
 * (buffer.c). Internal to common/ (and its tests); adapters include
 * smtp_probe.h only.
 */
#ifndef SP_BUFFER_H
#define SP_BUFFER_H

#include <stddef.h>

/* ---- buffer.c: growable buffers that always carry a cap -------------- */

/* A byte buffer that grows on demand up to a hard limit. */
struct sp_buf {
  char *data;   /* bytes, NUL-terminated for convenience */
  size_t len;   /* bytes used */
  size_t alloc; /* bytes allocated */
  size_t limit; /* never grows past this many bytes */
};

/* Start an empty buffer with a cap. */
void sp_buf_init(struct sp_buf *b, size_t limit);

/* Append n bytes; -1 (buffer unchanged) when that would pass the cap. */
int sp_buf_append(struct sp_buf *b, const void *data, size_t n);

/* Drop the first n bytes. */
void sp_buf_consume(struct sp_buf *b, size_t n);

/* Free the buffer's memory. */
void sp_buf_free(struct sp_buf *b);

/* Bounded copy of a C string (always NUL-terminates). */
void sp_strlcpy(char *dst, const char *src, size_t dstlen);

/* Append one dialogue line ("S: ..."/"C: ...") to a transcript,
 * sanitised; silently stops at the buffer's cap with a marker. */
void sp_transcript_add(struct sp_buf *t, const char *prefix, const char *data,
                       size_t len);

#endif /* SP_BUFFER_H */
