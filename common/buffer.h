/*
 * buffer.h - the core's internal helpers of buffer.c: bounded string copy
 * and transcripts. The capped buffer itself (struct sp_buf) is public, in
 * sp_buf.h. Internal to common/ (and its tests); adapters include
 * smtp_probe.h only.
 */
#ifndef SP_BUFFER_H
#define SP_BUFFER_H

#include <stddef.h>

#include "sp_buf.h" /* struct sp_buf and its operations (public) */

/* Bounded copy of a C string (always NUL-terminates). */
void sp_strlcpy(char *dst, const char *src, size_t dstlen);

/* Append one dialogue line ("S: ..."/"C: ...") to a transcript,
 * sanitised; silently stops at the buffer's cap with a marker. */
void sp_transcript_add(struct sp_buf *t, const char *prefix, const char *data,
                       size_t len);

#endif /* SP_BUFFER_H */
