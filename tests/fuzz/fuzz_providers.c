/*
 * fuzz_providers.c - fuzz the provider presets parser (sp_providers_parse,
 * YAML) and the host matching over a parsed table (sp_providers_find,
 * sp_providers_owner, sp_provider_host_check).
 *
 * Input: a providers file; its last line is also used as a host name.
 * Checks: a refused file says why; a parsed table's rows have a key, name,
 * host and ports that make a valid request; finding a row by its key gives
 * it back; the host check answers 0 or 1 with a terminated message (empty
 * on 0) and a row's own host is always its own.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "smtp_probe.h"

/* libFuzzer entry point: one providers file. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[256] = "", why[SP_MAX_TEXT], host[SP_MAX_HOST];
  struct sp_provider_set *set = sp_providers_parse(
      (const char *)data, size, "fuzz.yml", err, sizeof(err));
  FUZZ_ASSERT(strnlen(err, sizeof(err)) < sizeof(err), "error terminated");
  if (!set) {
    FUZZ_ASSERT(err[0] != '\0', "a refused file says why");
    return 0;
  }
  /* the last line of the input as a host name */
  size_t start = size;
  while (start > 0 && data[start - 1] != '\n')
    start--;
  size_t hl = size - start < sizeof(host) - 1 ? size - start : sizeof(host) - 1;
  memcpy(host, data + start, hl);
  host[hl] = '\0';
  if (memchr(host, '\0', hl))
    host[0] = '\0';
  const struct sp_provider *p;
  for (size_t i = 0; (p = sp_providers_at(set, i)) != NULL; i++) {
    FUZZ_ASSERT(p->key[0] && p->name[0] && p->host[0], "row fields");
    FUZZ_ASSERT(sp_providers_find(set, p->key) == p, "find by key");
    struct sp_request req;
    char verr[256];
    sp_request_init(&req);
    req.host = p->host;
    if (sp_policy_add_ports(p->policy, &req) == 0)
      FUZZ_ASSERT(sp_request_validate(&req, verr, sizeof(verr)) == 0,
                  "a provider's ports make a valid request");
    int rc = sp_provider_host_check(set, p, p->host, why, sizeof(why));
    FUZZ_ASSERT(rc == 0 && why[0] == '\0', "its own host is its own");
    rc = sp_provider_host_check(set, p, host, why, sizeof(why));
    FUZZ_ASSERT(rc == 0 || rc == 1, "host check answer");
    fuzz_check_text(why, sizeof(why), 0, "host check message");
    FUZZ_ASSERT((rc == 0) == (why[0] == '\0'), "message iff flagged");
  }
  (void)sp_providers_owner(set, host);
  sp_providers_free(set);
  return 0;
}
