/*
 * modules.h - probe modules: the exporter's YAML configuration.
 *
 * A file holds one top-level "modules:" mapping of module name to options
 * and, optionally, "allowed_targets:" (hosts, networks, ports; allow.h).
 * Option keys follow the core request's options (see README / USAGE.md);
 * unknown keys, wrong types, bad durations and duplicates are errors that
 * name the file, line and column.
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
/* Largest timeout a module may set, milliseconds. */
#define MOD_MAX_TIMEOUT_MS (120 * 1000)
/* Timeout when a module sets none, milliseconds. */
#define MOD_DEFAULT_TIMEOUT_MS (10 * 1000)

/* One probe module: how to probe a target. */
struct module {
  char name[MOD_MAX_NAME];      /* the module's name */
  uint16_t ports[SP_MAX_PORTS]; /* ports probed when target has none */
  int nports;                   /* how many of ports[] are used */
  enum sp_tls_mode tls_mode;    /* tls: auto|none|starttls|implicit */
  enum sp_role role;            /* role: default|submission|implicit|relay */
  char *server_name;            /* SNI and verify name, or NULL */
  char *ca_file;                /* trust anchors file, or NULL */
  bool insecure_skip_verify;    /* skip chain and name verification */
  char *ehlo;                   /* EHLO argument, or NULL */
  enum sp_family family;        /* ip_protocol: ip4|ip6|any */
  bool all_addresses;           /* probe every resolved address */
  char *source_ip_address;      /* local address to bind, or NULL */
  long timeout_ms;              /* whole-probe timeout */
  long banner_wait_ms;          /* greeting wait; 0: core default */
  char *dns_server;             /* resolver ADDR[:PORT], or NULL */
  int cert_warning_days;        /* cert_expiring below; -1: core default */
  int cert_critical_days;       /* CRITICAL below; -1: core default */
  char *auth_user;              /* AUTH identity, or NULL: no AUTH */
  char *auth_password_file;     /* where the secret came from */
  char *auth_secret;            /* the secret (read at load), or NULL */
  char *auth_mechanism;         /* PLAIN|LOGIN|CRAM-MD5|XOAUTH2, or NULL */
  char *mail_from;              /* MAIL FROM trial address, or NULL */
  char *rcpt_to;                /* RCPT TO trial address, or NULL */
  bool check_injection;         /* run the STARTTLS injection test */
  bool tls_trial;               /* implicit-TLS trial on a late greeting */
  int min_tls_version;          /* 0x0301..0x0304, or 0: core default */
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

/* Parse a Prometheus duration ("5s", "1m30s", "500ms", "0") into
 * milliseconds; -1 when invalid or too large. */
long modules_parse_duration(const char *text);

/* Write a duration in milliseconds back as text ("1m30s"). */
void modules_format_duration(long ms, char *buf, size_t buflen);

/* Fill a request's options from a module (host and ports not touched;
 * the request keeps pointers into the module). */
void module_apply(const struct module *mod, struct sp_request *req);

#endif /* SMTP_EXPORTER_MODULES_H */
