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
static bool mask_line(const char *line, struct strbuf *out, bool challenged) {
  bool client = strncmp(line, "C: ", 3) == 0;
  bool server = strncmp(line, "S: ", 3) == 0;
  if (client && challenged) {
    sb_add(out, "C: <masked>\n");
    return false;
  }
  if (client && strncasecmp(line + 3, "AUTH ", 5) == 0) {
    const char *mech = line + 8;
    size_t mlen = strcspn(mech, " ");
    sb_add(out, "C: AUTH ");
    sb_addn(out, mech, mlen);
    if (mech[mlen] == ' ')
      sb_add(out, " <masked>");
    sb_add(out, "\n");
    return false;
  }
  sb_add(out, line);
  sb_add(out, "\n");
  if (server)
    return strncmp(line + 3, "334", 3) == 0;
  return challenged;
}

/* Append a transcript with credentials masked (see debug.h). */
void debug_mask_transcript(const char *in, size_t len, struct strbuf *out) {
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
void debug_page(struct strbuf *out, const char *trail,
                const struct sp_batch *batch, const char *metrics) {
  sb_add(out, "Decisions:\n");
  sb_add(out, trail);
  if (batch == NULL) {
    sb_add(out, "\nNo probe ran.\n");
    return;
  }
  char *desc = malloc(8192);
  for (int i = 0; i < batch->nresults; i++) {
    const struct sp_result *res = &batch->results[i];
    sb_printf(out, "\n=== %s port %u%s%s: %s (%s) ===\n", res->host,
              (unsigned)res->port, res->address[0] ? " address " : "",
              res->address, sp_code_name(res->code), sp_state_name(res->state));
    sb_add(out, "Dialogue:\n");
    if (res->transcript != NULL)
      debug_mask_transcript(res->transcript, res->transcript_len, out);
    else
      sb_add(out, "(none recorded)\n");
    if (desc != NULL) {
      sp_result_describe(res, 2, desc, 8192);
      sb_add(out, "Result:\n");
      sb_add(out, desc);
      if (out->len > 0 && sb_str(out)[out->len - 1] != '\n')
        sb_add(out, "\n");
      sp_result_hint(res, desc, 8192);
      sb_printf(out, "Hint: %s\n", desc);
    }
  }
  free(desc);
  sb_add(out, "\nMetrics:\n");
  sb_add(out, metrics ? metrics : "(none)\n");
}
