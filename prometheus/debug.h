/*
 * debug.h - the /probe?debug=true page: the decision trail, each port's
 * SMTP dialogue (credentials masked), its description and the metrics
 * the probe would have returned. Pure, unit-tested.
 */
#ifndef SMTP_EXPORTER_DEBUG_H
#define SMTP_EXPORTER_DEBUG_H

#include <stddef.h>

#include "smtp_probe.h" /* struct sp_buf */

/* Append a transcript to out with credentials masked: the arguments of a
 * client AUTH command after the mechanism, and every client line that
 * answers a 334 challenge, become "<masked>". */
void debug_mask_transcript(const char *in, size_t len, struct sp_buf *out);

/* Append the whole debug page: trail (decision lines), then per result
 * its dialogue and description, then the metrics text. */
void debug_page(struct sp_buf *out, const char *trail,
                const struct sp_batch *batch, const char *metrics);

/* A probe's debug page without its metrics, kept in the parts the probe
 * left (decision trail, each port's raw dialogue, its description and
 * hint) for the recent probes: masking and assembling wait until the page
 * is asked for. */
struct debug_record;

/* Keep the parts of a page: takes trail (malloc'd text) and every
 * result's transcript (the batch's pointers are cleared); describes each
 * result now (its days to expiry are those of the probe's time). NULL
 * when out of memory (nothing is taken then). */
struct debug_record *debug_record_new(char *trail, struct sp_batch *batch);

/* Append a kept page: the same text debug_page(out, trail, batch, NULL)
 * appends for the trail and batch it was made from. */
void debug_record_render(const struct debug_record *rec, struct sp_buf *out);

/* Free a kept page and everything it took. */
void debug_record_free(struct debug_record *rec);

#endif /* SMTP_EXPORTER_DEBUG_H */
