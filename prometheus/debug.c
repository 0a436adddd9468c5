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

/* Append the whole debug page (see debug.h). */
void debug_page(struct sp_buf *out, const char *trail,
                const struct sp_batch *batch, const char *metrics) {
  sp_buf_puts(out, "Decisions:\n");
  sp_buf_puts(out, trail);
  if (batch == NULL) {
    sp_buf_puts(out, "\nNo probe ran.\n");
    return;
  }
  char *desc = malloc(8192);
  for (int i = 0; i < batch->nresults; i++) {
    const struct sp_result *res = &batch->results[i];
    sp_buf_printf(out, "\n=== %s port %u%s%s: %s (%s) ===\n", res->host,
                  (unsigned)res->port, res->address[0] ? " address " : "",
                  res->address, sp_code_name(res->code),
                  sp_state_name(res->state));
    sp_buf_puts(out, "Dialogue:\n");
    if (res->transcript != NULL)
      debug_mask_transcript(res->transcript, res->transcript_len, out);
    else
      sp_buf_puts(out, "(none recorded)\n");
    if (desc != NULL) {
      sp_result_describe(res, 2, desc, 8192);
      sp_buf_puts(out, "Result:\n");
      sp_buf_puts(out, desc);
      if (out->len > 0 && sp_buf_str(out)[out->len - 1] != '\n')
        sp_buf_puts(out, "\n");
      sp_result_hint(res, desc, 8192);
      sp_buf_printf(out, "Hint: %s\n", desc);
    }
  }
  free(desc);
  sp_buf_puts(out, "\nMetrics:\n");
  sp_buf_puts(out, metrics ? metrics : "(none)\n");
}
