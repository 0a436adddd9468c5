/*
 * fuzz_caps.c - fuzz the EHLO capability parser (sp_caps_parse) and its
 * formatter (sp_caps_format).
 *
 * Input: the text of an EHLO reply as the assembler stores it (lines
 * without their "250-" prefix, '\n'-separated), any bytes at all, cut to
 * what struct sp_reply holds. Checks: the domain and the AUTH list are
 * NUL-terminated, sanitised and within their arrays; the formatted list
 * fits its buffer; AUTH mechanisms are not repeated; parsing is
 * deterministic.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "probe_internal.h"

/* True when the space-separated list has a repeated word. */
static int has_duplicate(const char *list) {
  const char *a = list;
  while (*a) {
    size_t la = strcspn(a, " ");
    const char *b = a + la;
    while (*b == ' ')
      b++;
    while (*b) {
      size_t lb = strcspn(b, " ");
      if (la == lb && strncmp(a, b, la) == 0)
        return 1;
      b += lb;
      while (*b == ' ')
        b++;
    }
    a += la;
    while (*a == ' ')
      a++;
  }
  return 0;
}

/* libFuzzer entry point: one reply text. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct sp_reply r;
  static int ready;
  struct sp_caps caps, again;
  char out[512];
  if (!ready) {
    sp_reply_init(&r);
    ready = 1;
  }
  sp_reply_reset(&r);
  size_t n = size < SP_MAX_REPLY_BYTES - 1 ? size : SP_MAX_REPLY_BYTES - 1;
  FUZZ_ASSERT(sp_buf_append(&r.text, data, n) == 0, "reply text fits");
  r.code = 250;
  r.nlines = 1;
  for (size_t i = 0; i < n; i++)
    r.nlines += r.text.data[i] == '\n';
  sp_caps_parse(&caps, &r);
  FUZZ_ASSERT(caps.seen, "caps marked seen");
  fuzz_check_text(caps.ehlo_domain, sizeof(caps.ehlo_domain), 0, "ehlo domain");
  fuzz_check_text(caps.auth_mechs, sizeof(caps.auth_mechs), 0, "auth mechs");
  FUZZ_ASSERT(!has_duplicate(caps.auth_mechs), "AUTH mechanisms once each");
  FUZZ_ASSERT((caps.flags & ~0x3ffu) == 0, "only known capability flags");
  sp_caps_parse(&again, &r);
  FUZZ_ASSERT(memcmp(&caps, &again, sizeof(caps)) == 0,
              "parsing is deterministic");
  size_t len = sp_caps_format(&caps, out, sizeof(out));
  FUZZ_ASSERT(len < sizeof(out) && strlen(out) == len, "format fits");
  fuzz_check_text(out, sizeof(out), 0, "formatted caps");
  /* A tiny buffer must still be NUL-terminated. */
  char tiny[8];
  len = sp_caps_format(&caps, tiny, sizeof(tiny));
  FUZZ_ASSERT(len < sizeof(tiny) && strlen(tiny) == len, "tiny format fits");
  return 0;
}
