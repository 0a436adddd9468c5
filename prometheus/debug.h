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

#endif /* SMTP_EXPORTER_DEBUG_H */
