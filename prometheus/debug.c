/*
 * debug.c - the /probe?debug=true page (see debug.h).
 */
#include "debug.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest transcript line handled (longer lines are cut). */
#define DEBUG_MAX_LINE 2048

/* Append one line with credentials masked; challenged tells whether the
 * previous server line was a 334 challenge. Returns whether this line is
 * one (for the next). */
static bool mask_line(const char *line, struct sp_buf *out, bool challenged) {
  bool client = strncmp(line, "C: ", 3) == 0;
  bool server = strncmp(line, "S: ", 3) == 0;
  if (client && challenged) {
    sp_buf_puts(out, "C: <masked>\n");
    return false;
  }
  if (client && strncasecmp(line + 3, "AUTH ", 5) == 0) {
    const char *mech = line + 8;
    size_t mlen = strcspn(mech, " ");
    sp_buf_puts(out, "C: AUTH ");
    sp_buf_add(out, mech, mlen);
    if (mech[mlen] == ' ')
      sp_buf_puts(out, " <masked>");
    sp_buf_puts(out, "\n");
    return false;
  }
  sp_buf_puts(out, line);
  sp_buf_puts(out, "\n");
  if (server)
    return strncmp(line + 3, "334", 3) == 0;
  return challenged;
}

/* Append a transcript with credentials masked (see debug.h). */
void debug_mask_transcript(const char *in, size_t len, struct sp_buf *out) {
  bool challenged = false;
  size_t pos = 0;
  while (pos < len) {
    const char *start = in + pos;
    const char *nl = memchr(start, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - start) : len - pos;
    char line[DEBUG_MAX_LINE];
    size_t keep = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
    memcpy(line, start, keep);
    line[keep] = '\0';
    for (size_t i = 0; i < keep; i++) /* the core sanitised; be sure */
      if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
        line[i] = '?';
    challenged = mask_line(line, out, challenged);
    pos += n + (nl ? 1 : 0);
  }
}

/* Append one port's part of the page: its heading line, its dialogue
 * (masked), and when desc is given its description and hint. */
static void put_port(struct sp_buf *out, const char *head,
                     const char *transcript, size_t transcript_len,
                     const char *desc, const char *hint) {
  sp_buf_puts(out, head);
  sp_buf_puts(out, "Dialogue:\n");
  if (transcript != NULL)
    debug_mask_transcript(transcript, transcript_len, out);
  else
    sp_buf_puts(out, "(none recorded)\n");
  if (desc != NULL) {
    sp_buf_puts(out, "Result:\n");
    sp_buf_puts(out, desc);
    if (out->len > 0 && sp_buf_str(out)[out->len - 1] != '\n')
      sp_buf_puts(out, "\n");
    sp_buf_printf(out, "Hint: %s\n", hint);
  }
}

/* Write a result's heading line into buf. */
static void port_head(const struct sp_result *res, char *buf, size_t buflen) {
  snprintf(buf, buflen, "\n=== %s port %u%s%s: %s (%s) ===\n", res->host,
           (unsigned)res->port, res->address[0] ? " address " : "",
           res->address, sp_code_name(res->code), sp_state_name(res->state));
}

/* Longest heading line: host, address and the words around them. */
#define DEBUG_HEAD_MAX (SP_MAX_HOST + 64 + 128)
/* Room for a result's description, and for its hint. */
#define DEBUG_DESC_MAX 8192

/* Append the whole debug page (see debug.h). */
void debug_page(struct sp_buf *out, const char *trail,
                const struct sp_batch *batch, const char *metrics) {
  sp_buf_puts(out, "Decisions:\n");
  sp_buf_puts(out, trail);
  if (batch == NULL) {
    sp_buf_puts(out, "\nNo probe ran.\n");
    return;
  }
  char *desc = malloc(2 * DEBUG_DESC_MAX);
  for (int i = 0; i < batch->nresults; i++) {
    const struct sp_result *res = &batch->results[i];
    char head[DEBUG_HEAD_MAX];
    port_head(res, head, sizeof(head));
    if (desc != NULL) {
      sp_result_describe(res, 2, desc, DEBUG_DESC_MAX);
      sp_result_hint(res, desc + DEBUG_DESC_MAX, DEBUG_DESC_MAX);
    }
    put_port(out, head, res->transcript, res->transcript_len, desc,
             desc ? desc + DEBUG_DESC_MAX : NULL);
  }
  free(desc);
  sp_buf_puts(out, "\nMetrics:\n");
  sp_buf_puts(out, metrics ? metrics : "(none)\n");
}

/* One port's part of a kept page. */
struct debug_port {
  char *text;            /* "head\0desc\0hint\0" in one allocation, or NULL */
  size_t desc_at;        /* offset of desc in text */
  size_t hint_at;        /* offset of hint in text */
  char *transcript;      /* the dialogue as the core kept it (owned), or NULL */
  size_t transcript_len; /* its length */
};

/* A page without its metrics, in the parts the probe left (debug.h). */
struct debug_record {
  char *trail;               /* the decision lines (owned) */
  int nports;                /* entries in ports */
  struct debug_port ports[]; /* one per result */
};

/* Keep a page's parts (see debug.h). */
struct debug_record *debug_record_new(char *trail, struct sp_batch *batch) {
  struct debug_record *rec =
      calloc(1, sizeof(*rec) + (size_t)batch->nresults * sizeof(rec->ports[0]));
  char *desc = malloc(2 * DEBUG_DESC_MAX);
  if (rec == NULL || desc == NULL) {
    free(rec);
    free(desc);
    return NULL;
  }
  rec->trail = trail;
  rec->nports = batch->nresults;
  for (int i = 0; i < batch->nresults; i++) {
    struct sp_result *res = &batch->results[i];
    struct debug_port *p = &rec->ports[i];
    char head[DEBUG_HEAD_MAX];
    port_head(res, head, sizeof(head));
    size_t hlen = strlen(head);
    size_t dlen = sp_result_describe(res, 2, desc, DEBUG_DESC_MAX);
    size_t nlen = sp_result_hint(res, desc + DEBUG_DESC_MAX, DEBUG_DESC_MAX);
    dlen = strnlen(desc, dlen + 1); /* the text as put_port would read it */
    nlen = strnlen(desc + DEBUG_DESC_MAX, nlen + 1);
    p->text = malloc(hlen + dlen + nlen + 3);
    if (p->text != NULL) {
      memcpy(p->text, head, hlen + 1);
      p->desc_at = hlen + 1;
      memcpy(p->text + p->desc_at, desc, dlen);
      p->text[p->desc_at + dlen] = '\0';
      p->hint_at = p->desc_at + dlen + 1;
      memcpy(p->text + p->hint_at, desc + DEBUG_DESC_MAX, nlen);
      p->text[p->hint_at + nlen] = '\0';
    }
    p->transcript = res->transcript; /* taken: the batch forgets it */
    p->transcript_len = res->transcript_len;
    res->transcript = NULL;
    res->transcript_len = 0;
  }
  free(desc);
  return rec;
}

/* Append a kept page (see debug.h). */
void debug_record_render(const struct debug_record *rec, struct sp_buf *out) {
  sp_buf_puts(out, "Decisions:\n");
  sp_buf_puts(out, rec->trail ? rec->trail : "");
  for (int i = 0; i < rec->nports; i++) {
    const struct debug_port *p = &rec->ports[i];
    if (p->text == NULL) /* out of memory when kept: the port is left out */
      continue;
    put_port(out, p->text, p->transcript, p->transcript_len,
             p->text + p->desc_at, p->text + p->hint_at);
  }
  sp_buf_puts(out, "\nMetrics:\n");
  sp_buf_puts(out, "(none)\n");
}

/* Free a kept page (see debug.h). */
void debug_record_free(struct debug_record *rec) {
  if (rec == NULL)
    return;
  for (int i = 0; i < rec->nports; i++) {
    free(rec->ports[i].text);
    free(rec->ports[i].transcript);
  }
  free(rec->trail);
  free(rec);
}
