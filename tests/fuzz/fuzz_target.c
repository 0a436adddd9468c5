/*
 * fuzz_target.c - fuzz the exporter's /probe parameter handling: the
 * target parser (target_parse), the time budget from the scrape timeout
 * header (target_budget), the request built from both (target_request)
 * and the duration parser (modules_parse_duration).
 *
 * Input: up to three '\n'-separated fields: target, scrape timeout
 * header value, duration text. Checks: a parsed target has a non-empty
 * NUL-terminated host and a port 0..65535; a request built from it passes
 * sp_request_validate; the budget is finite, positive and never above
 * the module's timeout; a parsed duration survives format + parse.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "modules.h"
#include "target.h"

/* The module used to build requests: the default exporter module. */
static const char module_yaml[] = "modules:\n"
                                  "  smtp:\n"
                                  "    ports: [587, 465, 25]\n"
                                  "    timeout: 10s\n";

/* Copy field number idx of the input ('\n'-separated) into buf. */
static void field(const uint8_t *data, size_t size, int idx, char *buf,
                  size_t buflen) {
  size_t start = 0;
  for (int i = 0; i < idx; i++) {
    const uint8_t *nl = memchr(data + start, '\n', size - start);
    if (!nl) {
      buf[0] = '\0';
      return;
    }
    start = (size_t)(nl - data) + 1;
  }
  const uint8_t *nl = memchr(data + start, '\n', size - start);
  size_t end = nl ? (size_t)(nl - data) : size;
  size_t n = end - start < buflen - 1 ? end - start : buflen - 1;
  memcpy(buf, data + start, n);
  buf[n] = '\0';
}

/* libFuzzer entry point: target, header, duration. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct module_set *set;
  char text[600], header[64], dur[64], err[512], why[256];
  if (!set) {
    set = modules_parse(module_yaml, sizeof(module_yaml) - 1, "fuzz", err,
                        sizeof(err));
    FUZZ_ASSERT(set != NULL, "the built-in module parses");
  }
  field(data, size, 0, text, sizeof(text));
  field(data, size, 1, header, sizeof(header));
  field(data, size, 2, dur, sizeof(dur));

  struct target t;
  err[0] = '\0';
  if (target_parse(text, &t, err, sizeof(err)) == 0) {
    size_t hl = strnlen(t.host, sizeof(t.host));
    FUZZ_ASSERT(hl > 0 && hl < sizeof(t.host), "host non-empty, terminated");
    FUZZ_ASSERT(t.port >= 0 && t.port <= 65535, "port in range");
    struct sp_request req;
    char verr[256];
    if (target_request(&set->modules[0], &t, 5.0, false, &req, err,
                       sizeof(err)) == 0) {
      FUZZ_ASSERT(req.nports >= 1 && req.nports <= SP_MAX_PORTS, "ports");
      FUZZ_ASSERT(sp_request_validate(&req, verr, sizeof(verr)) == 0,
                  "a built request validates");
    }
  } else {
    FUZZ_ASSERT(err[0] != '\0', "a refused target says why");
  }
  FUZZ_ASSERT(strnlen(err, sizeof(err)) < sizeof(err), "error terminated");

  double budget = target_budget(10.0, header, 0.5, why, sizeof(why));
  FUZZ_ASSERT(isfinite(budget) && budget > 0 && budget <= 10.0,
              "budget finite, positive, at most the module's");
  fuzz_check_text(why, sizeof(why), 0, "budget explanation");

  long ms = modules_parse_duration(dur);
  FUZZ_ASSERT(ms >= -1, "duration -1 or a length");
  if (ms >= 0) {
    char again[64];
    modules_format_duration(ms, again, sizeof(again));
    long back = modules_parse_duration(again);
    FUZZ_ASSERT(back == ms || (ms == 0 && back == -1),
                "a duration survives format and parse");
  }
  return 0;
}
