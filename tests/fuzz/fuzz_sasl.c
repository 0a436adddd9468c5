/*
 * fuzz_sasl.c - fuzz the SASL pieces that see server bytes: base64
 * decoding (sp_b64_decode) and the CRAM-MD5 answer to a server's
 * challenge (sp_sasl_cram_md5), plus the mechanism choice from a
 * server's AUTH list (sp_sasl_pick).
 *
 * Input: a challenge / mechanism list (cut at 2 KiB). Checks: decoded
 * lengths fit the output; an encoded-then-decoded input comes back the
 * same; a CRAM-MD5 answer is printable base64; a picked mechanism is one
 * the server offered.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "probe_internal.h"

/* libFuzzer entry point: one server challenge. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char text[2049];
  unsigned char raw[3072];
  char out[4096];
  size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
  memcpy(text, data, n);
  text[n] = '\0';

  /* A guard byte before the output catches a write in front of it even
   * without AddressSanitizer (e.g. out[-1] in a gcc build). */
  unsigned char guarded[1 + sizeof(raw)];
  guarded[0] = 0xa5;
  int dl = sp_b64_decode(text, guarded + 1, sizeof(raw));
  FUZZ_ASSERT(guarded[0] == 0xa5, "nothing written before the output");
  FUZZ_ASSERT(dl >= -1 && dl <= (int)sizeof(raw), "decoded length fits");
  int tiny = sp_b64_decode(text, raw, 4);
  FUZZ_ASSERT(tiny >= -1 && tiny <= 4, "decoded length fits a small buffer");

  /* Round trip of the raw bytes. */
  int el = sp_b64_encode(data, n, out, sizeof(out));
  FUZZ_ASSERT(el >= 0 && (size_t)el < sizeof(out), "encoding fits");
  int back = sp_b64_decode(out, raw, sizeof(raw));
  FUZZ_ASSERT(back == (int)n && memcmp(raw, data, n) == 0, "base64 round trip");

  int cl = sp_sasl_cram_md5("probe@smtp-probe.test", "secret", text, out,
                            sizeof(out));
  if (cl >= 0) {
    FUZZ_ASSERT((size_t)cl < sizeof(out) && strlen(out) == (size_t)cl,
                "answer length");
    fuzz_check_text(out, sizeof(out), 0, "CRAM-MD5 answer");
  }

  const char *pick = sp_sasl_pick(text, NULL);
  if (pick)
    FUZZ_ASSERT(strcasestr(text, pick) != NULL,
                "a picked mechanism was offered");
  pick = sp_sasl_pick(text, "XOAUTH2");
  if (pick)
    FUZZ_ASSERT(strcasestr(text, pick) != NULL,
                "a wanted mechanism was offered");
  return 0;
}
