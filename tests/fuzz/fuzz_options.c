/*
 * fuzz_options.c - fuzz sp_request_set, the one parser of every adapter's
 * probe options (options.c): each option's grammar gets the same bytes.
 *
 * Input: a value (cut at 1 KiB, NUL-free). Checks: a refusal leaves a
 * one-line printable message; an accepted value leaves the request within
 * its bounds (ports 1-65535 and at most SP_MAX_PORTS, timeout in (0, 3600],
 * days in range, enums in range, a string field pointing at the value).
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "probe_internal.h"

/* libFuzzer entry point: one option value, tried under every key. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char value[1025];
  size_t n = size < sizeof(value) - 1 ? size : sizeof(value) - 1;
  memcpy(value, data, n);
  value[n] = '\0';
  for (size_t i = 0; sp_option_at(i) != NULL; i++) {
    const struct sp_option *o = sp_option_at(i);
    struct sp_request req;
    sp_request_init(&req);
    char err[256];
    err[0] = '\0';
    if (sp_request_set(&req, o->key, value, err, sizeof(err)) != 0) {
      FUZZ_ASSERT(err[0] != '\0', "a refusal says why");
      FUZZ_ASSERT(strchr(err, '\n') == NULL, "one line");
      continue;
    }
    FUZZ_ASSERT(req.nports >= 0 && req.nports <= SP_MAX_PORTS, "port count");
    for (int p = 0; p < req.nports; p++)
      FUZZ_ASSERT(req.ports[p].port >= 1, "port number");
    FUZZ_ASSERT(req.timeout_s > 0 && req.timeout_s <= 3600, "timeout");
    FUZZ_ASSERT(req.banner_wait_s >= 0 && req.banner_wait_s <= 3600,
                "banner wait");
    FUZZ_ASSERT(req.cert_warn_days >= -1 && req.cert_warn_days <= 36500,
                "days");
    FUZZ_ASSERT((unsigned)req.tls_mode <= SP_TLS_IMPLICIT, "tls mode");
    FUZZ_ASSERT((unsigned)req.role <= SP_ROLE_RELAY, "role");
    FUZZ_ASSERT((unsigned)req.family <= SP_FAMILY_IPV6, "family");
    FUZZ_ASSERT(req.min_tls_version == 0 || (req.min_tls_version >= 0x0301 &&
                                             req.min_tls_version <= 0x0304),
                "TLS version");
    if (strcmp(o->key, "host") == 0) /* (provider sets its own host) */
      FUZZ_ASSERT(req.host == value, "strings are stored by pointer");
    if (req.auth_mech)
      FUZZ_ASSERT(sp_auth_mech_canonical(req.auth_mech) == req.auth_mech,
                  "canonical mechanism");
  }
  return 0;
}
