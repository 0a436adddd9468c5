/*
 * fuzz_reply.c - fuzz the SMTP reply assembler (sp_reply_feed) over
 * arbitrary chunking.
 *
 * Input: byte 0 = number of chunk-size bytes that follow (0..15), those
 * bytes are the chunk schedule (each + 1 = bytes appended per step,
 * cycled), the rest is the server's byte stream.
 *
 * Checks: every finished reply is well formed (code 200..599, 1..128
 * lines, text within its array and NUL-terminated, first line and error
 * text sanitised); MORE is only said when no whole line is buffered; and
 * the replies found do not depend on how the stream was cut: the chunked
 * run must give the same replies and the same final outcome as a run that
 * appends as much as the probe buffer takes at once.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "probe_internal.h"

#define FUZZ_MAX_REPLIES 64 /* replies compared per input */

/* What one run over the stream found. */
struct run_log {
  int nreplies;                    /* finished replies */
  int codes[FUZZ_MAX_REPLIES];     /* their codes */
  int lines[FUZZ_MAX_REPLIES];     /* their line counts */
  uint32_t sums[FUZZ_MAX_REPLIES]; /* a checksum of their text */
  int outcome; /* 0: ran out of input, 1: reply error, 2: buffer full */
};

/* A small checksum of a reply's text (FNV-1a). */
static uint32_t text_sum(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* Check one finished reply and record it. */
static void check_reply(const struct sp_reply *r, struct run_log *log) {
  FUZZ_ASSERT(r->code >= 200 && r->code <= 599, "reply code in 200..599");
  FUZZ_ASSERT(r->nlines >= 1 && r->nlines <= SP_MAX_REPLY_LINES,
              "reply line count within the cap");
  FUZZ_ASSERT(r->text.len < SP_MAX_REPLY_BYTES, "reply text within its cap");
  FUZZ_ASSERT(r->text.data && r->text.data[r->text.len] == '\0',
              "reply text NUL-terminated");
  fuzz_check_text(r->first, sizeof(r->first), 0, "reply first line");
  struct sp_caps caps;
  sp_caps_parse(&caps, r);
  fuzz_check_text(caps.ehlo_domain, sizeof(caps.ehlo_domain), 0, "ehlo domain");
  fuzz_check_text(caps.auth_mechs, sizeof(caps.auth_mechs), 0, "auth mechs");
  if (log->nreplies < FUZZ_MAX_REPLIES) {
    log->codes[log->nreplies] = r->code;
    log->lines[log->nreplies] = r->nlines;
    log->sums[log->nreplies] = text_sum(r->text.data, r->text.len);
  }
  log->nreplies++;
}

/* Feed the stream in steps of the schedule's sizes (0 entries: as much
 * as the buffer takes) and record what the assembler says. */
static void run(const uint8_t *sched, size_t nsched, const uint8_t *data,
                size_t size, struct run_log *log) {
  struct sp_buf in, transcript;
  struct sp_reply r;
  char err[SP_MAX_TEXT];
  size_t off = 0, step = 0;
  memset(log, 0, sizeof(*log));
  sp_buf_init(&in, SP_MAX_PROBE_BUFFER);
  sp_buf_init(&transcript, SP_MAX_TRANSCRIPT);
  sp_reply_init(&r);
  while (off < size) {
    size_t want = nsched ? (size_t)sched[step++ % nsched] + 1
                         : SP_MAX_PROBE_BUFFER - in.len;
    if (want > size - off)
      want = size - off;
    if (want == 0 || sp_buf_append(&in, data + off, want) != 0) {
      log->outcome = 2; /* the engine says "more than N bytes unparsed" */
      break;
    }
    off += want;
    enum sp_reply_status st;
    do {
      err[0] = '\0';
      st = sp_reply_feed(&r, &in, &transcript, err, sizeof(err));
      FUZZ_ASSERT(in.len <= SP_MAX_PROBE_BUFFER, "input buffer within cap");
      if (st == SP_REPLY_DONE) {
        check_reply(&r, log);
        sp_reply_reset(&r);
      }
    } while (st == SP_REPLY_DONE);
    if (st == SP_REPLY_ERROR) {
      fuzz_check_text(err, sizeof(err), 0, "reply error text");
      FUZZ_ASSERT(err[0] != '\0', "an error says why");
      log->outcome = 1;
      break;
    }
    FUZZ_ASSERT(in.len == 0 || memchr(in.data, '\n', in.len) == NULL,
                "MORE only without a whole line buffered");
    /* a partial line holds at most SP_MAX_LINE bytes, plus the CR of a
     * CRLF whose LF has not arrived yet */
    FUZZ_ASSERT(in.len <= SP_MAX_LINE ||
                    (in.len == SP_MAX_LINE + 1 && in.data[SP_MAX_LINE] == '\r'),
                "a partial line stays within the cap");
  }
  FUZZ_ASSERT(transcript.len <= SP_MAX_TRANSCRIPT, "transcript within cap");
  if (transcript.len)
    fuzz_check_text(transcript.data, transcript.len + 1, 1, "transcript");
  sp_buf_free(&in);
  sp_buf_free(&transcript);
  sp_reply_free(&r);
}

/* libFuzzer entry point: one stream, cut two ways. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  size_t nsched = data[0] % 16;
  if (size < 1 + nsched)
    return 0;
  const uint8_t *sched = data + 1;
  const uint8_t *stream = data + 1 + nsched;
  size_t len = size - 1 - nsched;
  struct run_log whole, cut;
  run(NULL, 0, stream, len, &whole);
  run(sched, nsched, stream, len, &cut);
  /* Chunking must not change which replies are found. */
  if (nsched == 0)
    return 0;
  int n = whole.nreplies < cut.nreplies ? whole.nreplies : cut.nreplies;
  if (n > FUZZ_MAX_REPLIES)
    n = FUZZ_MAX_REPLIES;
  for (int i = 0; i < n; i++) {
    FUZZ_ASSERT(whole.codes[i] == cut.codes[i], "same reply codes");
    FUZZ_ASSERT(whole.lines[i] == cut.lines[i], "same reply line counts");
    FUZZ_ASSERT(whole.sums[i] == cut.sums[i], "same reply text");
  }
  FUZZ_ASSERT(whole.nreplies == cut.nreplies,
              "the same number of replies however the stream is cut");
  FUZZ_ASSERT(whole.outcome == cut.outcome,
              "the same outcome however the stream is cut");
  return 0;
}
