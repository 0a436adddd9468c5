/*
 * reply.h - SMTP replies assembled under caps, and EHLO capabilities (reply.c).
 * Internal to common/ (and its tests); adapters include smtp_probe.h only.
 */
#ifndef SP_REPLY_H
#define SP_REPLY_H

#include "buffer.h"
#include "smtp_probe.h"

/* ---- reply.c: SMTP replies and EHLO capabilities --------------------- */

/* One (possibly multi-line) SMTP reply being assembled. */
struct sp_reply {
  int code;                /* three-digit code, 0 until a line is in */
  int nlines;              /* lines seen so far */
  struct sp_buf text;      /* lines without code, '\n'-separated, NUL-
                              terminated; grows up to SP_MAX_REPLY_BYTES */
  char first[SP_MAX_TEXT]; /* first line, sanitised, with its code */
};

/* What one feed of input into a reply found. */
enum sp_reply_status {
  SP_REPLY_MORE, /* the reply is not complete yet */
  SP_REPLY_DONE, /* a whole reply is in */
  SP_REPLY_ERROR /* malformed input or a cap was passed */
};

/* Start an empty reply (its text grows on demand, within the cap). */
void sp_reply_init(struct sp_reply *r);

/* Empty a reply for the next one (keeps its memory). */
void sp_reply_reset(struct sp_reply *r);

/* Free a reply's memory. */
void sp_reply_free(struct sp_reply *r);

/* Take complete lines from in (consuming them) into r until the reply is
 * whole; on error write why into err. Lines go to transcript when given. */
enum sp_reply_status sp_reply_feed(struct sp_reply *r, struct sp_buf *in,
                                   struct sp_buf *transcript, char *err,
                                   size_t errlen);

/* Parse an EHLO reply's lines into a capability structure. */
void sp_caps_parse(struct sp_caps *caps, const struct sp_reply *r);

/* Write a capability list as text ("PIPELINING SIZE=1024 AUTH(PLAIN)"). */
size_t sp_caps_format(const struct sp_caps *caps, char *buf, size_t buflen);

#endif /* SP_REPLY_H */
