/*
 * fuzz_modules.c - fuzz the exporter's YAML module parser
 * (modules_parse) and what is done with a parsed set (modules_find,
 * module_apply).
 *
 * Input: the configuration file's text. Checks: a refused file gets a
 * message; a parsed set has 1..MOD_MAX_MODULES modules, each with a
 * NUL-terminated name that modules_find finds, 1..SP_MAX_PORTS distinct
 * ports (when any), a timeout within the documented cap, and applying it
 * to a request gives a request that validates once a host and a port
 * are set. Leaks and overflows are ASan's part.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "modules.h"

/* libFuzzer entry point: one configuration file. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[512];
  err[0] = '\0';
  struct module_set *set =
      modules_parse((const char *)data, size, "fuzz.yml", err, sizeof(err));
  FUZZ_ASSERT(strnlen(err, sizeof(err)) < sizeof(err), "error terminated");
  if (!set) {
    FUZZ_ASSERT(err[0] != '\0', "a refused file says why");
    return 0;
  }
  FUZZ_ASSERT(set->nmodules >= 1 && set->nmodules <= MOD_MAX_MODULES,
              "module count");
  for (int i = 0; i < set->nmodules; i++) {
    const struct module *m = &set->modules[i];
    size_t nl = strnlen(m->name, sizeof(m->name));
    FUZZ_ASSERT(nl > 0 && nl < sizeof(m->name), "name non-empty, terminated");
    FUZZ_ASSERT(modules_find(set, m->name) == m, "modules_find finds it");
    FUZZ_ASSERT(m->nports >= 0 && m->nports <= SP_MAX_PORTS, "port count");
    for (int a = 0; a < m->nports; a++) {
      FUZZ_ASSERT(m->ports[a] != 0, "port non-zero");
      for (int b = a + 1; b < m->nports; b++)
        FUZZ_ASSERT(m->ports[a] != m->ports[b], "ports distinct");
    }
    FUZZ_ASSERT(m->timeout_ms > 0 && m->timeout_ms <= MOD_MAX_TIMEOUT_MS,
                "timeout within the cap");
    FUZZ_ASSERT(m->banner_wait_ms >= 0 && m->banner_wait_ms < m->timeout_ms,
                "banner wait below the timeout");
    struct sp_request req;
    char verr[256];
    sp_request_init(&req);
    module_apply(m, &req);
    req.host = "127.0.0.1";
    sp_request_add_port(&req, m->nports ? m->ports[0] : 25, m->tls_mode,
                        m->role);
    if (sp_request_validate(&req, verr, sizeof(verr)) != 0) {
      fprintf(stderr, "module %s: %s\n", m->name, verr);
      FUZZ_ASSERT(0, "an accepted module gives a valid request");
    }
  }
  modules_free(set);
  return 0;
}
