/*
 * modules.c - probe modules from a YAML file, parsed with libyaml's
 * document loader (see modules.h).
 */
#include "modules.h"

#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* Longest string option value (paths included), without the NUL. */
#define MOD_MAX_STRING 1024

/* What the parser needs while walking one document. */
struct parse_ctx {
  yaml_document_t *doc;   /* the loaded document */
  struct module_set *set; /* the set being filled */
  const char *name;       /* file name for messages */
  char *err;              /* where the message goes */
  size_t errlen;          /* its size */
};

/* Write "NAME:LINE:COL: message" for a node; always returns -1. */
static int node_error(struct parse_ctx *ctx, const yaml_node_t *node,
                      const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int node_error(struct parse_ctx *ctx, const yaml_node_t *node,
                      const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fileio_yaml_error(ctx->err, ctx->errlen, ctx->name, node, fmt, ap);
  va_end(ap);
  return -1;
}

/* The node at index i of the document (never NULL for loaded indices). */
static yaml_node_t *node_at(struct parse_ctx *ctx, int i) {
  return yaml_document_get_node(ctx->doc, i);
}

/* A scalar's text, or NULL (with an error) when the node is not a plain
 * string without NUL bytes of sane length. */
static const char *scalar(struct parse_ctx *ctx, const yaml_node_t *node,
                          const char *what) {
  if (node->type != YAML_SCALAR_NODE) {
    node_error(ctx, node, "%s must be a single value", what);
    return NULL;
  }
  const char *s = (const char *)node->data.scalar.value;
  if (strlen(s) != node->data.scalar.length ||
      node->data.scalar.length > MOD_MAX_STRING) {
    node_error(ctx, node, "%s is too long or holds a NUL byte", what);
    return NULL;
  }
  return s;
}

/* True when a scalar node is a YAML null (empty, "~" or "null", plain). */
static bool is_null(const yaml_node_t *node) {
  if (node->type != YAML_SCALAR_NODE ||
      node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return false;
  const char *s = (const char *)node->data.scalar.value;
  return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
         strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* Milliseconds per duration unit, in the order units must appear. */
static const struct {
  const char *unit; /* suffix */
  long ms;          /* milliseconds per unit */
} duration_units[] = {
    {"y", 365L * 24 * 3600 * 1000},
    {"w", 7L * 24 * 3600 * 1000},
    {"d", 24L * 3600 * 1000},
    {"h", 3600L * 1000},
    {"m", 60L * 1000},
    {"s", 1000},
    {"ms", 1},
};

/* Parse a Prometheus duration into milliseconds; -1 when invalid. */
long modules_parse_duration(const char *text) {
  if (strcmp(text, "0") == 0)
    return 0;
  const size_t nunits = sizeof(duration_units) / sizeof(duration_units[0]);
  const char *p = text;
  size_t next_unit = 0; /* units must come in decreasing size, once each */
  long total = 0;
  if (*p == '\0')
    return -1;
  while (*p) {
    if (*p < '0' || *p > '9')
      return -1;
    long v = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
      if (++digits > 9)
        return -1;
      v = v * 10 + (*p - '0');
      p++;
    }
    size_t u;
    for (u = next_unit; u < nunits; u++) {
      size_t ul = strlen(duration_units[u].unit);
      /* "m" must not swallow the "m" of "ms" */
      if (strncmp(p, duration_units[u].unit, ul) == 0 &&
          !(ul == 1 && p[0] == 'm' && p[1] == 's'))
        break;
    }
    if (u == nunits)
      return -1;
    if (v > LONG_MAX / 2 / duration_units[u].ms)
      return -1;
    total += v * duration_units[u].ms;
    if (total > LONG_MAX / 4)
      return -1;
    p += strlen(duration_units[u].unit);
    next_unit = u + 1;
  }
  return total;
}

/* Write a duration in milliseconds back as text ("1m30s"). */
void modules_format_duration(long ms, char *buf, size_t buflen) {
  if (buflen == 0)
    return;
  buf[0] = '\0';
  if (ms <= 0) {
    snprintf(buf, buflen, "0s");
    return;
  }
  size_t used = 0;
  const size_t nunits = sizeof(duration_units) / sizeof(duration_units[0]);
  for (size_t u = 0; u < nunits && ms > 0; u++) {
    long n = ms / duration_units[u].ms;
    if (n == 0)
      continue;
    ms -= n * duration_units[u].ms;
    int w =
        snprintf(buf + used, buflen - used, "%ld%s", n, duration_units[u].unit);
    if (w < 0 || (size_t)w >= buflen - used)
      return;
    used += (size_t)w;
  }
}

/* Set a string option (a fresh copy); -1 on a bad value. */
static int opt_string(struct parse_ctx *ctx, const yaml_node_t *val,
                      const char *key, size_t maxlen, char **out) {
  const char *s = scalar(ctx, val, key);
  if (s == NULL)
    return -1;
  if (s[0] == '\0' || strlen(s) > maxlen)
    return node_error(ctx, val, "%s must be 1 to %zu characters", key, maxlen);
  for (const char *c = s; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f)
      return node_error(ctx, val, "%s holds a control character", key);
  char *copy = strdup(s);
  if (copy == NULL)
    return node_error(ctx, val, "out of memory");
  free(*out);
  *out = copy;
  return 0;
}

/* Set a boolean option (true/false); -1 on a bad value. */
static int opt_bool(struct parse_ctx *ctx, const yaml_node_t *val,
                    const char *key, bool *out) {
  const char *s = scalar(ctx, val, key);
  if (s == NULL)
    return -1;
  if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 ||
      strcmp(s, "TRUE") == 0)
    *out = true;
  else if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 ||
           strcmp(s, "FALSE") == 0)
    *out = false;
  else
    return node_error(ctx, val, "%s must be true or false, not \"%.40s\"", key,
                      s);
  return 0;
}

/* Set a duration option in milliseconds; -1 on a bad value. */
static int opt_duration(struct parse_ctx *ctx, const yaml_node_t *val,
                        const char *key, long *out) {
  const char *s = scalar(ctx, val, key);
  if (s == NULL)
    return -1;
  long ms = modules_parse_duration(s);
  if (ms < 0)
    return node_error(ctx, val,
                      "%s: invalid duration \"%.40s\" (use e.g. 5s, 1m30s, "
                      "500ms)",
                      key, s);
  *out = ms;
  return 0;
}

/* Set a day-count option (0..3650); -1 on a bad value. */
static int opt_days(struct parse_ctx *ctx, const yaml_node_t *val,
                    const char *key, int *out) {
  const char *s = scalar(ctx, val, key);
  long v;
  if (s == NULL)
    return -1;
  if (fileio_parse_long(s, 0, 3650, &v) < 0)
    return node_error(ctx, val, "%s must be a whole number of days 0..3650",
                      key);
  *out = (int)v;
  return 0;
}

/* Set a TLS version option: TLS10..TLS13 or 1.0..1.3. */
static int opt_tls_version(struct parse_ctx *ctx, const yaml_node_t *val,
                           const char *key, int *out) {
  const char *s = scalar(ctx, val, key);
  if (s == NULL)
    return -1;
  int v = sp_tls_version_from_name(s);
  if (v != 0) {
    *out = v;
    return 0;
  }
  return node_error(ctx, val, "%s must be TLS10, TLS11, TLS12 or TLS13", key);
}

/* Set the ports list: a non-empty sequence of distinct ports. */
static int opt_ports(struct parse_ctx *ctx, const yaml_node_t *val,
                     struct module *mod) {
  if (val->type != YAML_SEQUENCE_NODE)
    return node_error(ctx, val, "ports must be a list, e.g. [587, 465]");
  mod->nports = 0;
  for (yaml_node_item_t *it = val->data.sequence.items.start;
       it < val->data.sequence.items.top; it++) {
    const yaml_node_t *item = node_at(ctx, *it);
    const char *s = scalar(ctx, item, "a port");
    long port;
    if (s == NULL)
      return -1;
    if (fileio_parse_long(s, 1, 65535, &port) < 0)
      return node_error(ctx, item, "invalid port \"%.40s\" (1..65535)", s);
    if (mod->nports >= SP_MAX_PORTS)
      return node_error(ctx, item, "more than %d ports", SP_MAX_PORTS);
    for (int i = 0; i < mod->nports; i++)
      if (mod->ports[i] == port)
        return node_error(ctx, item, "port %ld listed twice", port);
    mod->ports[mod->nports++] = (uint16_t)port;
  }
  if (mod->nports == 0)
    return node_error(ctx, val, "ports must not be empty");
  return 0;
}

/* Set one option of a module from a key and its value node. */
static int module_option(struct parse_ctx *ctx, struct module *mod,
                         const yaml_node_t *keynode, const char *key,
                         const yaml_node_t *val) {
  if (strcmp(key, "ports") == 0)
    return opt_ports(ctx, val, mod);
  if (strcmp(key, "tls") == 0) {
    const char *s = scalar(ctx, val, key);
    int mode = s ? sp_tls_mode_from_name(s) : -1;
    if (s != NULL && mode < 0)
      return node_error(ctx, val,
                        "tls must be auto, none, starttls or implicit, not "
                        "\"%.40s\"",
                        s);
    if (s == NULL)
      return -1;
    mod->tls_mode = (enum sp_tls_mode)mode;
    return 0;
  }
  if (strcmp(key, "role") == 0) {
    const char *s = scalar(ctx, val, key);
    int role = s ? sp_role_from_name(s) : -1;
    if (s != NULL && role < 0)
      return node_error(ctx, val,
                        "role must be default, submission, implicit or "
                        "relay, not \"%.40s\"",
                        s);
    if (s == NULL)
      return -1;
    mod->role = (enum sp_role)role;
    return 0;
  }
  if (strcmp(key, "ip_protocol") == 0) {
    const char *s = scalar(ctx, val, key);
    if (s == NULL)
      return -1;
    if (strcmp(s, "ip4") == 0)
      mod->family = SP_FAMILY_IPV4;
    else if (strcmp(s, "ip6") == 0)
      mod->family = SP_FAMILY_IPV6;
    else if (strcmp(s, "any") == 0)
      mod->family = SP_FAMILY_ANY;
    else
      return node_error(
          ctx, val, "ip_protocol must be ip4, ip6 or any, not \"%.40s\"", s);
    return 0;
  }
  if (strcmp(key, "server_name") == 0)
    return opt_string(ctx, val, key, SP_MAX_HOST - 1, &mod->server_name);
  if (strcmp(key, "ca_file") == 0)
    return opt_string(ctx, val, key, MOD_MAX_STRING, &mod->ca_file);
  if (strcmp(key, "ehlo") == 0)
    return opt_string(ctx, val, key, SP_MAX_HOST - 1, &mod->ehlo);
  if (strcmp(key, "source_ip_address") == 0)
    return opt_string(ctx, val, key, 63, &mod->source_ip_address);
  if (strcmp(key, "dns_server") == 0)
    return opt_string(ctx, val, key, 63, &mod->dns_server);
  if (strcmp(key, "insecure_skip_verify") == 0)
    return opt_bool(ctx, val, key, &mod->insecure_skip_verify);
  if (strcmp(key, "all_addresses") == 0)
    return opt_bool(ctx, val, key, &mod->all_addresses);
  if (strcmp(key, "timeout") == 0)
    return opt_duration(ctx, val, key, &mod->timeout_ms);
  if (strcmp(key, "banner_wait") == 0)
    return opt_duration(ctx, val, key, &mod->banner_wait_ms);
  if (strcmp(key, "cert_warning_days") == 0)
    return opt_days(ctx, val, key, &mod->cert_warning_days);
  if (strcmp(key, "cert_critical_days") == 0)
    return opt_days(ctx, val, key, &mod->cert_critical_days);
  if (strcmp(key, "auth_user") == 0)
    return opt_string(ctx, val, key, 255, &mod->auth_user);
  if (strcmp(key, "auth_password_file") == 0)
    return opt_string(ctx, val, key, MOD_MAX_STRING, &mod->auth_password_file);
  if (strcmp(key, "auth_mechanism") == 0)
    return opt_string(ctx, val, key, 15, &mod->auth_mechanism);
  if (strcmp(key, "mail_from") == 0)
    return opt_string(ctx, val, key, 255, &mod->mail_from);
  if (strcmp(key, "rcpt_to") == 0)
    return opt_string(ctx, val, key, 255, &mod->rcpt_to);
  if (strcmp(key, "check_injection") == 0)
    return opt_bool(ctx, val, key, &mod->check_injection);
  if (strcmp(key, "tls_trial") == 0)
    return opt_bool(ctx, val, key, &mod->tls_trial);
  if (strcmp(key, "policy_file") == 0)
    return opt_string(ctx, val, key, MOD_MAX_STRING, &mod->policy_file);
  if (strcmp(key, "min_tls_version") == 0)
    return opt_tls_version(ctx, val, key, &mod->min_tls_version);
  return node_error(ctx, keynode, "unknown key \"%.64s\" in module \"%s\"", key,
                    mod->name);
}

/* 0 when path opens for reading as a regular file; else -1 with errno
 * set (0 for "not a regular file"). */
static int readable_file(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return -1;
  struct stat st;
  int rc = (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) ? 0 : -1;
  close(fd);
  errno = 0;
  return rc;
}

/* Check a module's options together (and through the core's request
 * validation); -1 with a message pointing at the module's name. */
static int module_check(struct parse_ctx *ctx, const yaml_node_t *namenode,
                        struct module *mod) {
  if (mod->timeout_ms <= 0 || mod->timeout_ms > MOD_MAX_TIMEOUT_MS)
    return node_error(ctx, namenode,
                      "module \"%s\": timeout must be above 0 and at most "
                      "%ds",
                      mod->name, MOD_MAX_TIMEOUT_MS / 1000);
  if (mod->banner_wait_ms >= mod->timeout_ms)
    return node_error(ctx, namenode,
                      "module \"%s\": banner_wait must be shorter than "
                      "timeout",
                      mod->name);
  if (mod->cert_warning_days >= 0 && mod->cert_critical_days >= 0 &&
      mod->cert_critical_days > mod->cert_warning_days)
    return node_error(ctx, namenode,
                      "module \"%s\": cert_critical_days is above "
                      "cert_warning_days",
                      mod->name);
  if (mod->ca_file != NULL && readable_file(mod->ca_file) < 0)
    return node_error(ctx, namenode, "module \"%s\": ca_file %.200s: %s",
                      mod->name, mod->ca_file,
                      errno ? strerror(errno) : "not a regular file");
  if (mod->auth_password_file != NULL && mod->auth_user == NULL)
    return node_error(ctx, namenode,
                      "module \"%s\": auth_password_file needs auth_user",
                      mod->name);
  if (mod->auth_user != NULL && mod->auth_password_file == NULL)
    return node_error(ctx, namenode,
                      "module \"%s\": auth_user needs auth_password_file",
                      mod->name);
  if (mod->auth_password_file != NULL) {
    char secret[512];
    char warn[512];
    char why[512];
    if (sp_secret_load(mod->auth_password_file, NULL, secret, sizeof(secret),
                       warn, sizeof(warn), why, sizeof(why)) < 0)
      return node_error(ctx, namenode, "module \"%s\": %s", mod->name, why);
    mod->auth_secret = strdup(secret);
    explicit_bzero(secret, sizeof(secret));
    if (mod->auth_secret == NULL)
      return node_error(ctx, namenode, "out of memory");
    if (warn[0] != '\0' && ctx->set->warning[0] == '\0')
      snprintf(ctx->set->warning, sizeof(ctx->set->warning),
               "module \"%s\": %s", mod->name, warn);
  }
  if (mod->policy_file != NULL) {
    char why[512];
    mod->policy = sp_policy_load(mod->policy_file, why, sizeof(why));
    if (mod->policy == NULL)
      return node_error(ctx, namenode, "module \"%s\": policy_file: %s",
                        mod->name, why);
  }
  struct sp_request req;
  sp_request_init(&req);
  req.host = "localhost";
  module_apply(mod, &req);
  if (mod->nports > 0) {
    for (int i = 0; i < mod->nports; i++)
      sp_request_add_port(&req, mod->ports[i], mod->tls_mode, mod->role);
  } else {
    sp_request_add_port(&req, 25, mod->tls_mode, mod->role);
  }
  char why[256];
  if (sp_request_validate(&req, why, sizeof(why)) < 0)
    return node_error(ctx, namenode, "module \"%s\": %s", mod->name, why);
  return 0;
}

/* True when a module name is [A-Za-z0-9_.-]+ and short enough. */
static bool valid_module_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= MOD_MAX_NAME)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
      return false;
  }
  return true;
}

/* Reset a module to its defaults. */
static void module_defaults(struct module *mod) {
  memset(mod, 0, sizeof(*mod));
  mod->tls_mode = SP_TLS_AUTO;
  mod->role = SP_ROLE_DEFAULT;
  mod->family = SP_FAMILY_ANY;
  mod->timeout_ms = MOD_DEFAULT_TIMEOUT_MS;
  mod->cert_warning_days = -1;
  mod->tls_trial = true;
  mod->cert_critical_days = -1;
}

/* Parse one module: its name node and its options mapping. */
static int parse_module(struct parse_ctx *ctx, struct module_set *set,
                        const yaml_node_t *namenode, const yaml_node_t *body) {
  const char *name = scalar(ctx, namenode, "a module name");
  if (name == NULL)
    return -1;
  if (!valid_module_name(name))
    return node_error(ctx, namenode,
                      "invalid module name \"%.64s\" (letters, digits, _ . - "
                      "only)",
                      name);
  if (modules_find(set, name) != NULL)
    return node_error(ctx, namenode, "module \"%s\" defined twice", name);
  if (set->nmodules >= MOD_MAX_MODULES)
    return node_error(ctx, namenode, "more than %d modules", MOD_MAX_MODULES);
  struct module *mod = &set->modules[set->nmodules++];
  module_defaults(mod);
  snprintf(mod->name, sizeof(mod->name), "%s", name);
  mod->line = (int)namenode->start_mark.line + 1;
  if (is_null(body))
    return module_check(ctx, namenode, mod);
  if (body->type != YAML_MAPPING_NODE)
    return node_error(ctx, body, "module \"%s\" must be a mapping of options",
                      name);
  for (yaml_node_pair_t *p = body->data.mapping.pairs.start;
       p < body->data.mapping.pairs.top; p++) {
    const yaml_node_t *keynode = node_at(ctx, p->key);
    const char *key = scalar(ctx, keynode, "an option name");
    if (key == NULL)
      return -1;
    for (yaml_node_pair_t *q = body->data.mapping.pairs.start; q < p; q++) {
      const yaml_node_t *prev = node_at(ctx, q->key);
      if (prev->type == YAML_SCALAR_NODE &&
          strcmp((const char *)prev->data.scalar.value, key) == 0)
        return node_error(ctx, keynode, "key \"%.64s\" repeated", key);
    }
    if (module_option(ctx, mod, keynode, key, node_at(ctx, p->value)) < 0)
      return -1;
  }
  return module_check(ctx, namenode, mod);
}

/* Parse one list of allowed_targets (hosts, networks or ports) into a. */
static int allow_list(struct parse_ctx *ctx, const char *key,
                      const yaml_node_t *val, struct allowlist *a) {
  if (val->type != YAML_SEQUENCE_NODE)
    return node_error(ctx, val, "allowed_targets.%s must be a list", key);
  for (yaml_node_item_t *it = val->data.sequence.items.start;
       it < val->data.sequence.items.top; it++) {
    const yaml_node_t *item = node_at(ctx, *it);
    const char *s = scalar(ctx, item, "an allowed_targets entry");
    if (s == NULL)
      return -1;
    if (strcmp(key, "ports") == 0) {
      long port;
      if (fileio_parse_long(s, 1, 65535, &port) < 0)
        return node_error(ctx, item,
                          "allowed_targets.ports: invalid port \"%.40s\" "
                          "(1..65535)",
                          s);
      if (a->nports >= ALLOW_MAX_ENTRIES)
        return node_error(ctx, item, "allowed_targets.ports: more than %d",
                          ALLOW_MAX_ENTRIES);
      a->ports[a->nports++] = (uint16_t)port;
    } else if (strcmp(key, "networks") == 0) {
      if (a->nnetworks >= ALLOW_MAX_ENTRIES)
        return node_error(ctx, item, "allowed_targets.networks: more than %d",
                          ALLOW_MAX_ENTRIES);
      if (allow_parse_network(s, &a->networks[a->nnetworks]) < 0)
        return node_error(ctx, item,
                          "allowed_targets.networks: \"%.64s\" is not a "
                          "network ADDRESS/PREFIX with zero host bits (e.g. "
                          "192.0.2.0/24, 2001:db8::/32)",
                          s);
      a->nnetworks++;
    } else {
      if (a->nhosts >= ALLOW_MAX_ENTRIES)
        return node_error(ctx, item, "allowed_targets.hosts: more than %d",
                          ALLOW_MAX_ENTRIES);
      if (allow_check_pattern(s) < 0)
        return node_error(ctx, item,
                          "allowed_targets.hosts: \"%.64s\" is not a host "
                          "name or \"*.\" followed by one (IP addresses go "
                          "in networks)",
                          s);
      a->hosts[a->nhosts] = strdup(s);
      if (a->hosts[a->nhosts] == NULL)
        return node_error(ctx, item, "out of memory");
      a->nhosts++;
    }
  }
  if (val->data.sequence.items.start == val->data.sequence.items.top)
    return node_error(ctx, val,
                      "allowed_targets.%s is empty (leave it out to allow "
                      "any)",
                      key);
  return 0;
}

/* Parse the allowed_targets mapping (keys hosts, networks, ports). */
static int parse_allowed(struct parse_ctx *ctx, const yaml_node_t *node,
                         struct allowlist *a) {
  if (node->type != YAML_MAPPING_NODE ||
      node->data.mapping.pairs.start == node->data.mapping.pairs.top)
    return node_error(ctx, node,
                      "allowed_targets must be a mapping with hosts, "
                      "networks and/or ports");
  a->enabled = true;
  for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
       p < node->data.mapping.pairs.top; p++) {
    const yaml_node_t *keynode = node_at(ctx, p->key);
    const char *key = scalar(ctx, keynode, "an allowed_targets key");
    if (key == NULL)
      return -1;
    bool *seen = NULL;
    if (strcmp(key, "hosts") == 0)
      seen = &a->hosts_set;
    else if (strcmp(key, "networks") == 0)
      seen = &a->networks_set;
    else if (strcmp(key, "ports") == 0)
      seen = &a->ports_set;
    else
      return node_error(ctx, keynode,
                        "unknown key \"%.64s\" in allowed_targets (hosts, "
                        "networks, ports)",
                        key);
    if (*seen)
      return node_error(ctx, keynode, "allowed_targets.%s repeated", key);
    *seen = true;
    if (allow_list(ctx, key, node_at(ctx, p->value), a) < 0)
      return -1;
  }
  return 0;
}

/* Parse the document's root: a mapping with the single key "modules". */
static int parse_root(struct parse_ctx *ctx, struct module_set *set,
                      const yaml_node_t *root) {
  if (root->type != YAML_MAPPING_NODE)
    return node_error(ctx, root, "the file must be a mapping with \"modules\"");
  const yaml_node_t *modules = NULL;
  for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
       p < root->data.mapping.pairs.top; p++) {
    const yaml_node_t *keynode = node_at(ctx, p->key);
    const char *key = scalar(ctx, keynode, "a top-level key");
    if (key == NULL)
      return -1;
    if (strcmp(key, "allowed_targets") == 0) {
      if (set->allow.enabled)
        return node_error(ctx, keynode, "\"allowed_targets\" repeated");
      if (parse_allowed(ctx, node_at(ctx, p->value), &set->allow) < 0)
        return -1;
      continue;
    }
    if (strcmp(key, "modules") != 0)
      return node_error(ctx, keynode,
                        "unknown top-level key \"%.64s\" (\"modules\" or "
                        "\"allowed_targets\")",
                        key);
    if (modules != NULL)
      return node_error(ctx, keynode, "\"modules\" repeated");
    modules = node_at(ctx, p->value);
  }
  if (modules == NULL)
    return node_error(ctx, root, "no \"modules\" key");
  if (modules->type != YAML_MAPPING_NODE ||
      modules->data.mapping.pairs.start == modules->data.mapping.pairs.top)
    return node_error(ctx, modules,
                      "\"modules\" must map at least one module name to its "
                      "options");
  for (yaml_node_pair_t *p = modules->data.mapping.pairs.start;
       p < modules->data.mapping.pairs.top; p++)
    if (parse_module(ctx, set, node_at(ctx, p->key), node_at(ctx, p->value)) <
        0)
      return -1;
  return 0;
}

/* Parse YAML text into a new module set (see modules.h). */
struct module_set *modules_parse(const char *text, size_t len, const char *name,
                                 char *err, size_t errlen) {
  struct module_set *set = calloc(1, sizeof(*set));
  if (set == NULL) {
    snprintf(err, errlen, "%s: out of memory", name);
    return NULL;
  }
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) {
    snprintf(err, errlen, "%s: cannot start the YAML parser", name);
    free(set);
    return NULL;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  int rc = -1;
  if (!yaml_parser_load(&parser, &doc)) {
    snprintf(err, errlen, "%s:%lu:%lu: YAML error: %s%s%s", name,
             (unsigned long)parser.problem_mark.line + 1,
             (unsigned long)parser.problem_mark.column + 1,
             parser.problem ? parser.problem : "syntax error",
             parser.context ? " " : "", parser.context ? parser.context : "");
    yaml_parser_delete(&parser);
    free(set);
    return NULL;
  }
  struct parse_ctx ctx = {&doc, set, name, err, errlen};
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (root == NULL)
    snprintf(err, errlen, "%s: empty configuration (no \"modules\")", name);
  else
    rc = parse_root(&ctx, set, root);
  yaml_document_delete(&doc);
  if (rc == 0) {
    yaml_document_t extra;
    if (!yaml_parser_load(&parser, &extra)) {
      snprintf(err, errlen, "%s:%lu: YAML error after the document: %s", name,
               (unsigned long)parser.problem_mark.line + 1,
               parser.problem ? parser.problem : "syntax error");
      rc = -1;
    } else {
      if (yaml_document_get_root_node(&extra) != NULL) {
        snprintf(err, errlen, "%s:%lu: only one YAML document is allowed", name,
                 (unsigned long)extra.start_mark.line + 1);
        rc = -1;
      }
      yaml_document_delete(&extra);
    }
  }
  yaml_parser_delete(&parser);
  if (rc < 0) {
    modules_free(set);
    return NULL;
  }
  return set;
}

/* Read and parse a file (see modules.h). */
struct module_set *modules_load(const char *path, char *err, size_t errlen) {
  char why[160];
  size_t len = 0;
  char *text = fileio_read(path, MOD_MAX_FILE, &len, why, sizeof(why));
  if (text == NULL) {
    snprintf(err, errlen, "%.256s%s: %s", path, strlen(path) > 256 ? "..." : "",
             why);
    return NULL;
  }
  struct module_set *set = modules_parse(text, len, path, err, errlen);
  free(text);
  return set;
}

/* Free a set and its strings. */
void modules_free(struct module_set *set) {
  if (set == NULL)
    return;
  allow_free(&set->allow);
  for (int i = 0; i < set->nmodules; i++) {
    struct module *m = &set->modules[i];
    free(m->server_name);
    free(m->ca_file);
    free(m->ehlo);
    free(m->source_ip_address);
    free(m->dns_server);
    free(m->auth_user);
    free(m->auth_password_file);
    free(m->auth_mechanism);
    free(m->mail_from);
    free(m->rcpt_to);
    if (m->auth_secret != NULL)
      explicit_bzero(m->auth_secret, strlen(m->auth_secret));
    free(m->auth_secret);
    free(m->policy_file);
    sp_policy_free(m->policy);
  }
  free(set);
}

/* The module called name, or NULL. */
const struct module *modules_find(const struct module_set *set,
                                  const char *name) {
  for (int i = 0; i < set->nmodules; i++)
    if (strcmp(set->modules[i].name, name) == 0)
      return &set->modules[i];
  return NULL;
}

/* Fill a request's options from a module (see modules.h). */
void module_apply(const struct module *mod, struct sp_request *req) {
  req->sni = mod->server_name;
  req->cafile = mod->ca_file;
  req->no_verify = mod->insecure_skip_verify;
  req->ehlo_name = mod->ehlo;
  req->family = mod->family;
  req->all_addresses = mod->all_addresses;
  req->source = mod->source_ip_address;
  req->timeout_s = (double)mod->timeout_ms / 1000.0;
  req->banner_wait_s = (double)mod->banner_wait_ms / 1000.0;
  req->dns_server = mod->dns_server;
  if (mod->cert_warning_days >= 0)
    req->cert_warn_days = mod->cert_warning_days;
  if (mod->cert_critical_days >= 0)
    req->cert_crit_days = mod->cert_critical_days;
  req->auth_user = mod->auth_user;
  req->auth_secret = mod->auth_secret;
  req->auth_mech = mod->auth_mechanism;
  req->mail_from = mod->mail_from;
  req->rcpt_to = mod->rcpt_to;
  req->check_injection = mod->check_injection;
  req->no_tls_trial = !mod->tls_trial;
  if (mod->min_tls_version != 0)
    req->min_tls_version = mod->min_tls_version;
}
