/*
 * webconfig.c - TLS and basic auth settings for the exporter's endpoint
 * (see webconfig.h), parsed with libyaml's document loader.
 */
#include "webconfig.h"

#include "fileio.h"
#include "yamlerr.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* What the parser needs while walking the document. */
struct web_ctx {
  yaml_document_t *doc;  /* the loaded document */
  const char *name;      /* file name for messages */
  struct web_config *wc; /* what is being filled */
  char *err;             /* where the message goes */
  size_t errlen;         /* its size */
};

/* A hash (of random bytes) for unknown users, so they cost as much as
 * known ones. */
static const char dummy_hash[] =
    "$2b$10$icytBM3Viy/1ypQ2bqJ01.qn8OKfi7xPo4Pz0PWuPpnhhCgV.A1FO";

/* Write "NAME:LINE:COL: message" for a node; always returns -1. */
static int web_error(struct web_ctx *ctx, const yaml_node_t *node,
                     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int web_error(struct web_ctx *ctx, const yaml_node_t *node,
                     const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  yamlerr_node(ctx->err, ctx->errlen, ctx->name, node, fmt, ap);
  va_end(ap);
  return -1;
}

/* A scalar's text (at most max bytes, no NUL inside), or NULL with an
 * error naming what. */
static const char *web_scalar(struct web_ctx *ctx, const yaml_node_t *node,
                              const char *what, size_t max) {
  if (node->type != YAML_SCALAR_NODE) {
    web_error(ctx, node, "%s must be a single value", what);
    return NULL;
  }
  const char *s = (const char *)node->data.scalar.value;
  if (strlen(s) != node->data.scalar.length || node->data.scalar.length == 0 ||
      node->data.scalar.length > max) {
    web_error(ctx, node, "%s must be 1 to %zu characters without NUL", what,
              max);
    return NULL;
  }
  return s;
}

/* Read a whole non-empty regular file of at most WEB_MAX_FILE bytes as a
 * string (PEM: no NUL bytes). NULL with the reason in why on failure. */
static char *read_small_file(const char *path, char *why, size_t whylen) {
  size_t len = 0;
  char *text = fileio_read(path, WEB_MAX_FILE, &len, why, whylen);
  if (text == NULL)
    return NULL;
  if (len == 0 || strlen(text) != len) {
    snprintf(why, whylen,
             len == 0 ? "is empty" : "holds a NUL byte (PEM expected)");
    free(text);
    return NULL;
  }
  return text;
}

/* Check a bcrypt hash's shape (see webconfig.h). */
bool webconfig_bcrypt_hash(const char *text) {
  static const char b64[] =
      "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  if (strlen(text) != 60 || text[0] != '$' || text[1] != '2' ||
      (text[2] != 'a' && text[2] != 'b' && text[2] != 'y') || text[3] != '$' ||
      text[4] < '0' || text[4] > '3' || text[5] < '0' || text[5] > '9' ||
      text[6] != '$')
    return false;
  int cost = (text[4] - '0') * 10 + (text[5] - '0');
  if (cost < 4 || cost > 31)
    return false;
  for (size_t i = 7; i < 60; i++)
    if (strchr(b64, text[i]) == NULL)
      return false;
  return true;
}

/* Parse tls_server_config: cert_file and key_file, read now. */
static int parse_tls(struct web_ctx *ctx, const yaml_node_t *node) {
  if (node->type != YAML_MAPPING_NODE)
    return web_error(ctx, node,
                     "tls_server_config must be a mapping with cert_file "
                     "and key_file");
  const yaml_node_t *cert = NULL, *key = NULL;
  for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
       p < node->data.mapping.pairs.top; p++) {
    const yaml_node_t *k = yaml_document_get_node(ctx->doc, p->key);
    const char *ks = web_scalar(ctx, k, "a tls_server_config key", 64);
    if (ks == NULL)
      return -1;
    const yaml_node_t **slot = NULL;
    if (strcmp(ks, "cert_file") == 0)
      slot = &cert;
    else if (strcmp(ks, "key_file") == 0)
      slot = &key;
    else
      return web_error(ctx, k,
                       "tls_server_config.%.64s is not supported (only "
                       "cert_file and key_file)",
                       ks);
    if (*slot != NULL)
      return web_error(ctx, k, "tls_server_config.%s repeated", ks);
    *slot = yaml_document_get_node(ctx->doc, p->value);
  }
  if (cert == NULL || key == NULL)
    return web_error(ctx, node,
                     "tls_server_config needs both cert_file and key_file");
  const char *certpath = web_scalar(ctx, cert, "cert_file", 4096);
  const char *keypath = web_scalar(ctx, key, "key_file", 4096);
  if (certpath == NULL || keypath == NULL)
    return -1;
  char why[256];
  ctx->wc->cert_pem = read_small_file(certpath, why, sizeof(why));
  if (ctx->wc->cert_pem == NULL)
    return web_error(ctx, cert, "cert_file %.200s: %s", certpath, why);
  if (strstr(ctx->wc->cert_pem, "-----BEGIN CERTIFICATE-----") == NULL)
    return web_error(ctx, cert, "cert_file %.200s: no PEM certificate",
                     certpath);
  ctx->wc->key_pem = read_small_file(keypath, why, sizeof(why));
  if (ctx->wc->key_pem == NULL)
    return web_error(ctx, key, "key_file %.200s: %s", keypath, why);
  if (strstr(ctx->wc->key_pem, "PRIVATE KEY-----") == NULL)
    return web_error(ctx, key, "key_file %.200s: no PEM private key", keypath);
  if (strstr(ctx->wc->key_pem, "ENCRYPTED") != NULL)
    return web_error(
        ctx, key, "key_file %.200s: encrypted keys are not supported", keypath);
  struct stat st;
  if (stat(keypath, &st) == 0 && (st.st_mode & 0077) != 0)
    snprintf(ctx->wc->warning, sizeof(ctx->wc->warning),
             "key_file %.200s is readable by group or others (mode %03o)",
             keypath, (unsigned)(st.st_mode & 0777));
  ctx->wc->tls = true;
  return 0;
}

/* Parse basic_auth_users: user name to bcrypt hash. */
static int parse_users(struct web_ctx *ctx, const yaml_node_t *node) {
  if (node->type != YAML_MAPPING_NODE ||
      node->data.mapping.pairs.start == node->data.mapping.pairs.top)
    return web_error(ctx, node,
                     "basic_auth_users must map at least one user name to "
                     "a bcrypt hash");
  for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
       p < node->data.mapping.pairs.top; p++) {
    const yaml_node_t *k = yaml_document_get_node(ctx->doc, p->key);
    const yaml_node_t *v = yaml_document_get_node(ctx->doc, p->value);
    const char *user = web_scalar(ctx, k, "a user name", WEB_MAX_USER - 1);
    if (user == NULL)
      return -1;
    for (const char *c = user; *c; c++)
      if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == ':')
        return web_error(ctx, k, "user name holds a control character or ':'");
    const char *hash = web_scalar(ctx, v, "a password hash", 63);
    if (hash == NULL)
      return -1;
    if (!webconfig_bcrypt_hash(hash))
      return web_error(ctx, v,
                       "the hash of user \"%.64s\" is not a bcrypt hash "
                       "($2y$10$ + 53 characters; make one with htpasswd -nB "
                       "or mkpasswd -m bcrypt)",
                       user);
    if (ctx->wc->nusers >= WEB_MAX_USERS)
      return web_error(ctx, k, "more than %d users", WEB_MAX_USERS);
    for (int i = 0; i < ctx->wc->nusers; i++)
      if (strcmp(ctx->wc->users[i].name, user) == 0)
        return web_error(ctx, k, "user \"%.64s\" listed twice", user);
    struct web_user *u = &ctx->wc->users[ctx->wc->nusers++];
    snprintf(u->name, sizeof(u->name), "%s", user);
    snprintf(u->hash, sizeof(u->hash), "%s", hash);
  }
  return 0;
}

/* Parse the root mapping: tls_server_config and basic_auth_users. */
static int parse_root(struct web_ctx *ctx, const yaml_node_t *root) {
  if (root->type != YAML_MAPPING_NODE)
    return web_error(ctx, root,
                     "the web config must be a mapping (tls_server_config, "
                     "basic_auth_users)");
  bool seen_tls = false, seen_users = false;
  for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
       p < root->data.mapping.pairs.top; p++) {
    const yaml_node_t *k = yaml_document_get_node(ctx->doc, p->key);
    const yaml_node_t *v = yaml_document_get_node(ctx->doc, p->value);
    const char *key = web_scalar(ctx, k, "a top-level key", 64);
    if (key == NULL)
      return -1;
    bool *seen = NULL;
    if (strcmp(key, "tls_server_config") == 0)
      seen = &seen_tls;
    else if (strcmp(key, "basic_auth_users") == 0)
      seen = &seen_users;
    else
      return web_error(ctx, k,
                       "%.64s is not supported (only tls_server_config and "
                       "basic_auth_users)",
                       key);
    if (*seen)
      return web_error(ctx, k, "%s repeated", key);
    *seen = true;
    int rc = seen == &seen_tls ? parse_tls(ctx, v) : parse_users(ctx, v);
    if (rc < 0)
      return -1;
  }
  return 0;
}

/* Parse web config YAML text (see webconfig.h). */
int webconfig_parse(const char *text, size_t len, const char *name,
                    struct web_config *wc, char *err, size_t errlen) {
  memset(wc, 0, sizeof(*wc));
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) {
    snprintf(err, errlen, "%s: cannot start the YAML parser", name);
    return -1;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &doc)) {
    snprintf(err, errlen, "%s:%lu:%lu: YAML error: %s", name,
             (unsigned long)parser.problem_mark.line + 1,
             (unsigned long)parser.problem_mark.column + 1,
             parser.problem ? parser.problem : "syntax error");
    yaml_parser_delete(&parser);
    return -1;
  }
  struct web_ctx ctx = {&doc, name, wc, err, errlen};
  int rc = 0;
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (root != NULL) /* an empty file: no TLS, no auth (as Prometheus) */
    rc = parse_root(&ctx, root);
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  if (rc < 0)
    webconfig_free(wc);
  return rc;
}

/* Read and parse a web config file (see webconfig.h). */
int webconfig_load(const char *path, struct web_config *wc, char *err,
                   size_t errlen) {
  memset(wc, 0, sizeof(*wc));
  char why[256];
  char *text = read_small_file(path, why, sizeof(why));
  if (text == NULL) {
    snprintf(err, errlen, "%.256s%s: %s", path, strlen(path) > 256 ? "..." : "",
             why);
    return -1;
  }
  int rc = webconfig_parse(text, strlen(text), path, wc, err, errlen);
  free(text);
  return rc;
}

/* Free what a web config holds (see webconfig.h). */
void webconfig_free(struct web_config *wc) {
  if (wc->key_pem != NULL)
    explicit_bzero(wc->key_pem, strlen(wc->key_pem));
  free(wc->key_pem);
  free(wc->cert_pem);
  wc->key_pem = NULL;
  wc->cert_pem = NULL;
  wc->tls = false;
  wc->nusers = 0;
}

/* Compare two strings in time that depends on their length only. */
static bool same_string(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  unsigned char diff = la != lb;
  size_t n = la < lb ? la : lb;
  for (size_t i = 0; i < n; i++)
    diff |= (unsigned char)(a[i] ^ b[i]);
  return diff == 0;
}

/* Check a user and password (see webconfig.h). */
bool webconfig_check_user(const struct web_config *wc, const char *user,
                          const char *password) {
  const char *hash = dummy_hash;
  bool known = false;
  for (int i = 0; i < wc->nusers; i++) {
    if (strcmp(wc->users[i].name, user) == 0) {
      hash = wc->users[i].hash;
      known = true;
      break;
    }
  }
  struct crypt_data *cd = calloc(1, sizeof(*cd));
  if (cd == NULL)
    return false;
  const char *out = crypt_r(password, hash, cd);
  bool ok = out != NULL && out[0] != '*' && same_string(out, hash);
  explicit_bzero(cd, sizeof(*cd));
  free(cd);
  return ok && known;
}
