/*
 * fuzz_modules.c - fuzz the exporter's YAML module parser
 * (modules_parse) and what is done with a parsed set (modules_find,
 * module_apply).
 *
 * Input: the configuration file's text. Checks: a refused file gets a
 * message; a parsed set has 1..MOD_MAX_MODULES modules, each with a
 * NUL-terminated name that modules_find finds, a request template with
 * 1..SP_MAX_PORTS distinct ports (when any), a timeout within the
 * exporter's cap and no host, module_apply copies that template, and the
 * copy validates once a host and (when none) a port are set. Leaks and
 * overflows are ASan's part.
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
    const struct sp_request *t = &m->req; /* the module's template */
    FUZZ_ASSERT(t->nports >= 0 && t->nports <= SP_MAX_PORTS, "port count");
    for (int a = 0; a < t->nports; a++) {
      FUZZ_ASSERT(t->ports[a].port != 0, "port non-zero");
      for (int b = a + 1; b < t->nports; b++)
        FUZZ_ASSERT(t->ports[a].port != t->ports[b].port, "ports distinct");
    }
    FUZZ_ASSERT(t->timeout_s > 0 && t->timeout_s <= MOD_MAX_TIMEOUT_S,
                "timeout within the cap");
    FUZZ_ASSERT(t->banner_wait_s >= 0 && t->banner_wait_s <= t->timeout_s,
                "banner wait at most the timeout");
    FUZZ_ASSERT(t->host == NULL, "the template has no host");
    struct sp_request req;
    char verr[256];
    module_apply(m, &req);
    FUZZ_ASSERT(req.nports == t->nports && req.timeout_s == t->timeout_s &&
                    req.tls_mode == t->tls_mode && req.sni == t->sni &&
                    req.auth_secret == t->auth_secret,
                "apply copies the template");
    req.host = "127.0.0.1";
    if (req.nports == 0)
      sp_request_add_port(&req, 25, SP_TLS_AUTO, SP_ROLE_DEFAULT);
    if (sp_request_validate(&req, verr, sizeof(verr)) != 0) {
      fprintf(stderr, "module %s: %s\n", m->name, verr);
      FUZZ_ASSERT(0, "an accepted module gives a valid request");
    }
  }
  modules_free(set);
  return 0;
}
