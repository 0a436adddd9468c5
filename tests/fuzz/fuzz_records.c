/*
 * fuzz_records.c - fuzz the mail-domain record parsers (records.c): the
 * MTA-STS TXT record and policy file, the mx pattern match, TLS-RPT,
 * DMARC, SPF and DKIM key records, all fed the same bytes (text from DNS
 * or HTTPS, never trusted).
 *
 * Input: a record or policy (cut at 70 KiB; NUL ends the text records).
 * Checks: a refusal says why; accepted results stay in bounds (counts,
 * modes, max_age, pct, key sizes); a pattern always matches itself when it
 * has no "*", and "*.x" never matches a name with a dot in its label.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "records.h"

/* libFuzzer entry point: one record or policy body. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t n = size < 70000 ? size : 70000;
  char *text = malloc(n + 1);
  if (!text)
    return 0;
  memcpy(text, data, n);
  text[n] = '\0';
  char err[256], id[64];

  struct sp_sts_policy pol;
  err[0] = '\0';
  if (sp_sts_policy_parse(text, n, &pol, err, sizeof(err)) == 0) {
    FUZZ_ASSERT(pol.nmx >= 0 && pol.nmx <= SP_STS_MAX_MX, "mx count");
    FUZZ_ASSERT(pol.max_age >= 0 && pol.max_age <= SP_STS_MAX_AGE, "max_age");
    FUZZ_ASSERT(pol.mode == SP_STS_NONE || pol.nmx > 0, "mx unless none");
    for (int i = 0; i < pol.nmx; i++)
      FUZZ_ASSERT(strlen(pol.mx[i]) < sizeof(pol.mx[i]), "mx terminated");
  } else {
    FUZZ_ASSERT(err[0] != '\0', "a refused policy says why");
  }
  if (sp_sts_txt_parse(text, id, sizeof(id), err, sizeof(err)) == 0)
    FUZZ_ASSERT(strlen(id) >= 1 && strlen(id) <= 32, "id length");

  /* The mx match: split the input at its first newline into pattern and
   * host. */
  char *nl = memchr(text, '\n', strlen(text));
  if (nl) {
    *nl = '\0';
    const char *pattern = text, *host = nl + 1;
    bool m = sp_sts_mx_match(pattern, host);
    size_t pl = strlen(pattern);
    if (pl && pattern[pl - 1] == '.')
      pl--; /* a trailing dot is ignored: "*." is the name "*" */
    if (m && pl >= 3 && pattern[0] == '*' && pattern[1] == '.') {
      size_t hl = strlen(host);
      if (hl && host[hl - 1] == '.')
        hl--;
      FUZZ_ASSERT(hl > pl - 1, "a wildcard needs a label");
    }
    if (pattern[0] && pattern[0] != '*' && strlen(pattern) < 255 &&
        pattern[strlen(pattern) - 1] != '.')
      FUZZ_ASSERT(sp_sts_mx_match(pattern, pattern), "a name matches itself");
    *nl = '\n';
  }

  struct sp_tlsrpt rpt;
  if (sp_tlsrpt_parse(text, &rpt, err, sizeof(err)) == 0)
    FUZZ_ASSERT(rpt.nrua >= 1 && rpt.nrua <= SP_RPT_MAX_URIS, "rua count");
  struct sp_dmarc d;
  if (sp_dmarc_parse(text, &d, err, sizeof(err)) == 0)
    FUZZ_ASSERT(d.pct >= 0 && d.pct <= 100 && d.p <= SP_DMARC_REJECT &&
                    d.sp <= SP_DMARC_REJECT,
                "DMARC fields");
  struct sp_spf s;
  if (sp_spf_parse(text, &s, err, sizeof(err)) == 0)
    FUZZ_ASSERT(s.lookups >= 0 && s.length <= SP_RECORD_MAX, "SPF counts");
  struct sp_dkim_key k;
  if (sp_dkim_key_parse(text, &k, err, sizeof(err)) == 0)
    FUZZ_ASSERT(k.revoked ? k.bits == 0 : k.bits > 0, "DKIM key size");
  free(text);
  return 0;
}
