/*
 * modules.c - probe modules from a YAML file, parsed with libyaml's
 * document loader (see modules.h). A module key that is a probe option
 * goes, as text, through the core's sp_request_set (one name map below);
 * only the exporter's own keys, the YAML shape and the module names are
 * checked here.
 */
#include "modules.h"

#include "fileio.h"
#include "number.h"
#include "yamlerr.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
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
  yamlerr_node(ctx->err, ctx->errlen, ctx->name, node, fmt, ap);
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

/* The module keys that are core options: the exporter's spelling (a
 * contract, as in blackbox_exporter) and the core's canonical key. */
static const struct {
  const char *key;       /* the module key */
  const char *canonical; /* the core option it spells (options.c) */
} option_keys[] = {
    {"ports", "ports"},
    {"tls", "tls"},
    {"role", "role"},
    {"server_name", "sni"},
    {"ca_file", "cafile"},
    {"insecure_skip_verify", "no_verify"},
    {"ehlo", "ehlo"},
    {"ip_protocol", "family"},
    {"all_addresses", "all_addresses"},
    {"source_ip_address", "source"},
    {"timeout", "timeout"},
    {"banner_wait", "banner_wait"},
    {"dns_server", "dns_server"},
    {"cert_warning_days", "cert_warn_days"},
    {"cert_critical_days", "cert_crit_days"},
    {"auth_user", "auth_user"},
    {"auth_mechanism", "auth_mech"},
    {"mail_from", "mail_from"},
    {"rcpt_to", "rcpt_to"},
    {"check_injection", "check_injection"},
    {"tls_trial", "tls_trial"},
    {"proxy_protocol", "proxy_protocol"},
    {"client_cert", "client_cert"},
    {"client_key", "client_key"},
    {"min_tls_version", "min_tls"},
    {"provider", "provider"},
};

#define NOPTION_KEYS (sizeof(option_keys) / sizeof(option_keys[0]))
_Static_assert(NOPTION_KEYS <= MOD_MAX_VALUES, "one value slot per key");

/* The module keys that are the exporter's own, not probe options. */
static const char *const own_keys[] = {"auth_password_file", "policy_file"};

#define NOWN_KEYS (sizeof(own_keys) / sizeof(own_keys[0]))

/* The i-th accepted module key (see modules.h). */
const char *modules_key_at(size_t i, const char **canonical) {
  if (i < NOPTION_KEYS) {
    if (canonical != NULL)
      *canonical = option_keys[i].canonical;
    return option_keys[i].key;
  }
  if (canonical != NULL)
    *canonical = NULL;
  return i - NOPTION_KEYS < NOWN_KEYS ? own_keys[i - NOPTION_KEYS] : NULL;
}

/* The core key a module key spells, or NULL when it spells none. */
static const char *canonical_key(const char *key) {
  for (size_t i = 0; i < NOPTION_KEYS; i++)
    if (strcmp(option_keys[i].key, key) == 0)
      return option_keys[i].canonical;
  return NULL;
}

/* Milliseconds per duration unit, largest first (for formatting). */
static const struct {
  const char *unit; /* suffix */
  long ms;          /* milliseconds per unit */
} duration_units[] = {
    {"d", 24L * 3600 * 1000},
    {"h", 3600L * 1000},
    {"m", 60L * 1000},
    {"s", 1000},
    {"ms", 1},
};

/* Parse a duration by the core's grammar into milliseconds (modules.h). */
long modules_parse_duration(const char *text) {
  double s = 0;
  if (sp_parse_seconds(text, &s) != 0 || s > 10.0 * 365 * 86400)
    return -1;
  return lround(s * 1000.0);
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

/* Set one of the exporter's own path keys (a fresh copy); -1 on a bad
 * value. */
static int opt_path(struct parse_ctx *ctx, const yaml_node_t *val,
                    const char *key, char **out) {
  const char *s = scalar(ctx, val, key);
  if (s == NULL)
    return -1;
  if (s[0] == '\0')
    return node_error(ctx, val, "%s: an empty path", key);
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

/* Give a core option its text through sp_request_set; keep: the module
 * keeps the copy the template points into (a port list is parsed into
 * numbers, never kept). Errors read "KEY: <core sentence>" at the value's
 * position. */
static int set_core(struct parse_ctx *ctx, struct module *mod,
                    const yaml_node_t *val, const char *key,
                    const char *canonical, const char *text, bool keep) {
  if (keep) {
    char *copy = strdup(text);
    if (copy == NULL || mod->nvalues >= MOD_MAX_VALUES) {
      free(copy);
      return node_error(ctx, val, "out of memory");
    }
    mod->values[mod->nvalues++] = copy;
    text = copy;
  }
  char why[256];
  char shown[256];
  if (sp_request_set(&mod->req, canonical, text, why, sizeof(why)) == 0)
    return 0;
  sp_sanitize(shown, sizeof(shown), why, strlen(why)); /* quotes the value */
  return node_error(ctx, val, "%s: %s", key, shown);
}

/* Set one option of a module from a key and its value node: core options
 * as text (a ports list item by item), then the exporter's own keys. */
static int module_option(struct parse_ctx *ctx, struct module *mod,
                         const yaml_node_t *keynode, const char *key,
                         const yaml_node_t *val) {
  const char *canonical = canonical_key(key);
  if (canonical != NULL && strcmp(canonical, "ports") == 0) {
    if (val->type != YAML_SEQUENCE_NODE)
      return node_error(ctx, val, "ports must be a list, e.g. [587, 465]");
    if (val->data.sequence.items.start == val->data.sequence.items.top)
      return set_core(ctx, mod, val, key, canonical, "", false); /* none */
    for (yaml_node_item_t *it = val->data.sequence.items.start;
         it < val->data.sequence.items.top; it++) {
      const yaml_node_t *item = node_at(ctx, *it);
      const char *s = scalar(ctx, item, "a port");
      if (s == NULL || set_core(ctx, mod, item, key, canonical, s, false) < 0)
        return -1;
    }
    return 0;
  }
  if (canonical != NULL) {
    const char *s = scalar(ctx, val, key);
    return s == NULL ? -1 : set_core(ctx, mod, val, key, canonical, s, true);
  }
  if (strcmp(key, "auth_password_file") == 0)
    return opt_path(ctx, val, key, &mod->auth_password_file);
  if (strcmp(key, "policy_file") == 0)
    return opt_path(ctx, val, key, &mod->policy_file);
  return node_error(ctx, keynode, "unknown key \"%.64s\" in module \"%s\"", key,
                    mod->name);
}

/* 0 when path opens for reading as a regular file; else -1 with errno
 * set (0 for "not a regular file"). Non-blocking, so a FIFO cannot hang
 * a reload. */
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

/* Write the core's validation message with the exporter's spelling of
 * its leading key ("cafile: ..." -> "ca_file: ..."). */
static void spell_message(char *out, size_t outlen, const char *why) {
  size_t klen = strcspn(why, ":");
  for (size_t i = 0; why[klen] == ':' && i < NOPTION_KEYS; i++)
    if (strlen(option_keys[i].canonical) == klen &&
        strncmp(option_keys[i].canonical, why, klen) == 0) {
      snprintf(out, outlen, "%s%s", option_keys[i].key, why + klen);
      return;
    }
  snprintf(out, outlen, "%s", why);
}

/* Check a module's options together: the exporter's own rules (timeout
 * cap, ca_file a regular file, the secret, the policy), then the core's
 * validation of the template with the ports a probe would use; -1 with a
 * message pointing at the module's name. */
static int module_check(struct parse_ctx *ctx, const yaml_node_t *namenode,
                        struct module *mod) {
  if (mod->req.timeout_s > MOD_MAX_TIMEOUT_S)
    return node_error(ctx, namenode,
                      "module \"%s\": timeout must be at most %gs (the "
                      "exporter's cap)",
                      mod->name, MOD_MAX_TIMEOUT_S);
  if (mod->req.cafile != NULL && readable_file(mod->req.cafile) < 0)
    return node_error(ctx, namenode, "module \"%s\": ca_file %.200s: %s",
                      mod->name, mod->req.cafile,
                      errno ? strerror(errno) : "not a regular file");
  if (mod->auth_password_file != NULL && mod->req.auth_user == NULL)
    return node_error(ctx, namenode,
                      "module \"%s\": auth_password_file needs auth_user",
                      mod->name);
  if (mod->req.auth_user != NULL && mod->auth_password_file == NULL)
    return node_error(ctx, namenode,
                      "module \"%s\": auth_user needs auth_password_file",
                      mod->name);
  if (mod->auth_password_file != NULL) {
    char secret[SP_MAX_SECRET];
    char warn[512];
    char why[512];
    if (sp_secret_load(mod->auth_password_file, NULL, secret, sizeof(secret),
                       warn, sizeof(warn), why, sizeof(why)) < 0)
      return node_error(ctx, namenode, "module \"%s\": %s", mod->name, why);
    mod->auth_secret = strdup(secret);
    explicit_bzero(secret, sizeof(secret));
    if (mod->auth_secret == NULL)
      return node_error(ctx, namenode, "out of memory");
    mod->req.auth_secret = mod->auth_secret;
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
  struct sp_request req = mod->req;
  req.host = "localhost";
  if (req.nports == 0 && mod->policy != NULL)
    sp_policy_add_ports(mod->policy, &req);
  if (req.nports == 0) /* the target's port, with the module's tls/role */
    sp_request_add_port(&req, 25, SP_TLS_AUTO, SP_ROLE_DEFAULT);
  char why[256];
  char spelt[300];
  if (sp_request_validate(&req, why, sizeof(why)) < 0) {
    spell_message(spelt, sizeof(spelt), why);
    return node_error(ctx, namenode, "module \"%s\": %s", mod->name, spelt);
  }
  sp_request_warnings(&req, why, sizeof(why));
  if (why[0] != '\0' && ctx->set->warning[0] == '\0') {
    spell_message(spelt, sizeof(spelt), why);
    snprintf(ctx->set->warning, sizeof(ctx->set->warning), "module \"%s\": %s",
             mod->name, spelt);
  }
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

/* Reset a module to its defaults: the core's request defaults. */
static void module_defaults(struct module *mod) {
  memset(mod, 0, sizeof(*mod));
  sp_request_init(&mod->req);
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
      if (number_parse_long(s, 1, 65535, &port) < 0)
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
    for (int v = 0; v < m->nvalues; v++)
      free(m->values[v]);
    free(m->auth_password_file);
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

/* Fill a request from a module: a copy of its template (modules.h). */
void module_apply(const struct module *mod, struct sp_request *req) {
  *req = mod->req;
}
