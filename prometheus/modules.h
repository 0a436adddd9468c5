/*
 * modules.h - probe modules: the exporter's YAML configuration.
 *
 * A file holds one top-level "modules:" mapping of module name to options
 * and, optionally, "allowed_targets:" (hosts, networks, ports; allow.h).
 * Option keys are blackbox-style spellings of the core's options (a small
 * name map; USAGE.md), parsed by the core's sp_request_set; unknown keys,
 * wrong types, bad values and duplicates are errors that name the file,
 * line and column, the key, and the core's sentence.
 */
#ifndef SMTP_EXPORTER_MODULES_H
#define SMTP_EXPORTER_MODULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allow.h"
#include "smtp_probe.h"

/* Longest module name, with its NUL. */
#define MOD_MAX_NAME 64
/* Most modules one file may define. */
#define MOD_MAX_MODULES 64
/* Largest configuration file read. */
#define MOD_MAX_FILE (1024 * 1024)
/* Largest timeout a module may set, seconds: the exporter's own cap (a
 * scrape waits for the probe), below the core's 3600 s. */
#define MOD_MAX_TIMEOUT_S 120.0
/* Most option values one module keeps (one per key; keys are unique). */
#define MOD_MAX_VALUES 32

/* One probe module: how to probe a target. Every probe option is parsed
 * once at load, by the core's sp_request_set, into the request template;
 * a probe copies it (module_apply) and sets host, ports and timeout. */
struct module {
  char name[MOD_MAX_NAME];      /* the module's name */
  struct sp_request req;        /* the template: options, ports, no host */
  char *values[MOD_MAX_VALUES]; /* owned option texts req points into */
  int nvalues;                  /* how many of values[] are used */
  char *auth_password_file;     /* where the secret came from, or NULL */
  char *auth_secret;            /* the secret (read at load), or NULL */
  char *policy_file;            /* port policy file, or NULL */
  struct sp_policy *policy;     /* the loaded policy, or NULL */
  int line;                     /* line of the module's name in the file */
};

/* A loaded configuration: all modules of one file, reference-counted so a
 * reload can replace it while probes still use the old one. */
struct module_set {
  struct module modules[MOD_MAX_MODULES]; /* the modules, in file order */
  int nmodules;                           /* how many */
  int refs;                               /* references held (see http.c) */
  struct allowlist allow; /* allowed_targets: (enabled: false if absent) */
  char warning[512];      /* first non-fatal remark (e.g. secret file mode) */
};

/* Parse YAML text; name is used in error messages. Returns a new set, or
 * NULL with "NAME:LINE:COL: message" in err. */
struct module_set *modules_parse(const char *text, size_t len, const char *name,
                                 char *err, size_t errlen);

/* Read and parse a file (at most MOD_MAX_FILE bytes). */
struct module_set *modules_load(const char *path, char *err, size_t errlen);

/* Free a set and its strings. */
void modules_free(struct module_set *set);

/* The module called name, or NULL. */
const struct module *modules_find(const struct module_set *set,
                                  const char *name);

/* The i-th module key the exporter accepts (NULL past the end); with
 * canonical set to the core option it spells, or NULL for the exporter's
 * own keys (auth_password_file, policy_file). For the docs test. */
const char *modules_key_at(size_t i, const char **canonical);

/* Parse a duration as the core does (sp_parse_seconds: "5s", "1m30s",
 * "500ms", "2.5") into milliseconds; -1 when invalid or over ten years.
 * Kept for tests/fuzz/fuzz_target.c's format/parse round trip. */
long modules_parse_duration(const char *text);

/* Write a duration in milliseconds as text ("1m30s"), for the landing
 * page and the debug trail. */
void modules_format_duration(long ms, char *buf, size_t buflen);

/* Fill a request from a module: a copy of its template (the request
 * points into the module); the caller sets host, ports and timeout. */
void module_apply(const struct module *mod, struct sp_request *req);

#endif /* SMTP_EXPORTER_MODULES_H */
