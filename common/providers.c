/*
 * providers.c - provider presets: the submission settings big mail
 * providers publish (data/providers.yml, compiled in as
 * sp_providers_yaml), the check of a host name against a provider's, and
 * the check of a finished batch against the provider's documented ports
 * (a port policy per provider, in the policy file's per-port format).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "policy_internal.h"
#include "probe_internal.h"

/* Providers in one table, at most. */
#define SP_MAX_PROVIDERS 64

/* Bytes a user's providers file may have. */
#define SP_MAX_PROVIDERS_FILE (256 * 1024)

/* Deviations kept per result when checking a batch. */
#define SP_PROVIDER_DEVS 8

/* data/providers.yml as compiled in (generated providers_data.c). */
extern const unsigned char sp_providers_yaml[];
extern const size_t sp_providers_yaml_len;

/* A table of providers. */
struct sp_provider_set {
  struct sp_provider items[SP_MAX_PROVIDERS]; /* in file order */
  size_t n;                                   /* how many */
};

/* What the parser needs while walking one document. */
struct pctx {
  yaml_document_t *doc; /* the loaded document */
  const char *name;     /* file name for messages */
  char *err;            /* where the message goes */
  size_t errlen;        /* its size */
};

/* Write "NAME line N: message"; always returns -1. */
__attribute__((format(printf, 3, 4))) static int
perr(struct pctx *c, const yaml_node_t *n, const char *fmt, ...) {
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  snprintf(c->err, c->errlen, "%s line %lu: %s", c->name,
           n ? (unsigned long)n->start_mark.line + 1 : 0UL, msg);
  return -1;
}

/* A scalar node's text, or NULL. */
static const char *scalar(const yaml_node_t *n) {
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value
                                          : NULL;
}

/* True for a name of [a-z0-9.-] (any case), 1 to max-1 characters. */
static bool name_ok(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n >= max)
    return false;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
          (ch == '*' && max == 128)))
      return false;
  }
  return true;
}

/* True for printable text without control characters, below max bytes. */
static bool text_ok(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n >= max)
    return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return false;
  return true;
}

/* Copy a scalar text field; -1 with a message when it does not fit. */
static int get_text(struct pctx *c, yaml_node_t *v, const char *key, char *out,
                    size_t outlen) {
  const char *s = scalar(v);
  if (!s || !text_ok(s, outlen))
    return perr(c, v, "%s: a single line of text below %zu bytes", key, outlen);
  sp_strlcpy(out, s, outlen);
  return 0;
}

/* Read a list of names into rows of width w; -1 with a message. */
static int get_names(struct pctx *c, yaml_node_t *v, const char *key,
                     char *rows, size_t w, int *n) {
  if (v->type != YAML_SEQUENCE_NODE)
    return perr(c, v, "%s: expected a list", key);
  *n = 0;
  for (yaml_node_item_t *it = v->data.sequence.items.start;
       it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = yaml_document_get_node(c->doc, *it);
    const char *s = scalar(e);
    if (!s || !name_ok(s, w))
      return perr(c, e ? e : v, "%s: not a name", key);
    if (*n >= SP_PROVIDER_MAX_NAMES)
      return perr(c, e, "%s: more than %d names", key, SP_PROVIDER_MAX_NAMES);
    sp_strlcpy(rows + (size_t)(*n)++ * w, s, w);
  }
  return 0;
}

/* Read one provider's mapping; -1 with a message. */
static int parse_provider(struct pctx *c, yaml_node_t *map,
                          struct sp_provider *p) {
  if (map->type != YAML_MAPPING_NODE)
    return perr(c, map, "provider %s: expected a mapping", p->key);
  bool have_ports = false;
  for (yaml_node_pair_t *pr = map->data.mapping.pairs.start;
       pr < map->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = yaml_document_get_node(c->doc, pr->key);
    yaml_node_t *vn = yaml_document_get_node(c->doc, pr->value);
    const char *k = scalar(kn);
    int rc = 0;
    if (!k || !vn)
      return perr(c, kn, "provider %s: a key must be a name", p->key);
    if (strcmp(k, "name") == 0)
      rc = get_text(c, vn, k, p->name, sizeof(p->name));
    else if (strcmp(k, "host") == 0) {
      rc = get_text(c, vn, k, p->host, sizeof(p->host));
      if (rc == 0 && !sp_host_is_valid(p->host))
        rc = perr(c, vn, "host: not a host name");
    } else if (strcmp(k, "source") == 0)
      rc = get_text(c, vn, k, p->source, sizeof(p->source));
    else if (strcmp(k, "as_of") == 0)
      rc = get_text(c, vn, k, p->as_of, sizeof(p->as_of));
    else if (strcmp(k, "unsure") == 0)
      rc = get_text(c, vn, k, p->unsure, sizeof(p->unsure));
    else if (strcmp(k, "aliases") == 0)
      rc = get_names(c, vn, k, p->aliases[0], sizeof(p->aliases[0]),
                     &p->naliases);
    else if (strcmp(k, "hosts") == 0)
      rc = get_names(c, vn, k, p->hosts[0], sizeof(p->hosts[0]), &p->nhosts);
    else if (strcmp(k, "domains") == 0)
      rc = get_names(c, vn, k, p->domains[0], sizeof(p->domains[0]),
                     &p->ndomains);
    else if (strcmp(k, "ports") == 0) {
      char why[200];
      have_ports = true;
      if (p->policy)
        return perr(c, kn, "provider %s: ports given twice", p->key);
      p->policy = sp_policy_new();
      if (!p->policy)
        return perr(c, kn, "out of memory");
      if (sp_policy_parse_ports(c->doc, vn, p->policy, why, sizeof(why)) != 0)
        return perr(c, vn, "provider %s: %s", p->key, why);
    } else
      return perr(c, kn, "provider %s: unknown key \"%.40s\"", p->key, k);
    if (rc != 0)
      return -1;
  }
  if (!p->name[0] || !p->host[0] || !p->source[0] || !p->as_of[0] ||
      !have_ports)
    return perr(c, map,
                "provider %s: name, host, source, as_of and ports are needed",
                p->key);
  return 0;
}

/* Walk the document: a mapping with one key, "providers". */
static int parse_doc(struct pctx *c, struct sp_provider_set *set) {
  yaml_node_t *root = yaml_document_get_root_node(c->doc);
  if (!root || root->type != YAML_MAPPING_NODE)
    return perr(c, root, "expected a mapping with \"providers\"");
  yaml_node_t *list = NULL;
  for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
       pr < root->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = yaml_document_get_node(c->doc, pr->key);
    const char *k = scalar(kn);
    if (!k || strcmp(k, "providers") != 0)
      return perr(c, kn, "unknown key \"%.40s\"", k ? k : "?");
    list = yaml_document_get_node(c->doc, pr->value);
  }
  if (!list || list->type != YAML_MAPPING_NODE)
    return perr(c, list ? list : root,
                "\"providers\" must map provider names to settings");
  for (yaml_node_pair_t *pr = list->data.mapping.pairs.start;
       pr < list->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = yaml_document_get_node(c->doc, pr->key);
    const char *k = scalar(kn);
    if (!k || !name_ok(k, sizeof(set->items[0].key)))
      return perr(c, kn, "a provider's key must be a name of a-z, 0-9, '-'");
    if (set->n >= SP_MAX_PROVIDERS)
      return perr(c, kn, "more than %d providers", SP_MAX_PROVIDERS);
    for (size_t i = 0; i < set->n; i++)
      if (strcasecmp(set->items[i].key, k) == 0)
        return perr(c, kn, "provider %s given twice", k);
    struct sp_provider *p = &set->items[set->n++];
    memset(p, 0, sizeof(*p));
    sp_strlcpy(p->key, k, sizeof(p->key));
    yaml_node_t *vn = yaml_document_get_node(c->doc, pr->value);
    if (!vn || parse_provider(c, vn, p) != 0)
      return -1;
  }
  return 0;
}

/* Parse a providers file's text (see smtp_probe.h). */
struct sp_provider_set *sp_providers_parse(const char *text, size_t len,
                                           const char *name, char *err,
                                           size_t errlen) {
  struct sp_provider_set *set = calloc(1, sizeof(*set));
  yaml_parser_t parser;
  yaml_document_t doc;
  int rc = -1;
  if (!set) {
    snprintf(err, errlen, "%s: out of memory", name);
    return NULL;
  }
  if (!yaml_parser_initialize(&parser)) {
    snprintf(err, errlen, "%s: out of memory", name);
    free(set);
    return NULL;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &doc)) {
    snprintf(err, errlen, "%s line %lu: %s", name,
             (unsigned long)parser.problem_mark.line + 1,
             parser.problem ? parser.problem : "YAML error");
  } else {
    struct pctx c = {&doc, name, err, errlen};
    rc = parse_doc(&c, set);
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&parser);
  if (rc != 0) {
    sp_providers_free(set);
    return NULL;
  }
  return set;
}

/* Free a table and the policies it holds. */
void sp_providers_free(struct sp_provider_set *set) {
  if (!set)
    return;
  for (size_t i = 0; i < set->n; i++)
    sp_policy_free(set->items[i].policy);
  free(set);
}

/* The i-th provider, NULL past the end. */
const struct sp_provider *sp_providers_at(const struct sp_provider_set *set,
                                          size_t i) {
  return set && i < set->n ? &set->items[i] : NULL;
}

/* The provider of a key or alias (any case), or NULL. */
const struct sp_provider *sp_providers_find(const struct sp_provider_set *set,
                                            const char *name) {
  for (size_t i = 0; set && name && i < set->n; i++) {
    const struct sp_provider *p = &set->items[i];
    if (strcasecmp(p->key, name) == 0)
      return p;
    for (int a = 0; a < p->naliases; a++)
      if (strcasecmp(p->aliases[a], name) == 0)
        return p;
  }
  return NULL;
}

/* Whether host (any case, a trailing dot ignored) matches pattern, where
 * "*" stands for exactly one DNS label. */
static bool host_matches(const char *pattern, const char *host, size_t hlen) {
  size_t i = 0;
  for (const char *p = pattern; *p; p++) {
    if (*p == '*') {
      size_t start = i;
      while (i < hlen && host[i] != '.')
        i++;
      if (i == start)
        return false;
      continue;
    }
    if (i >= hlen ||
        (host[i] | 0x20) != (*p | 0x20) /* ASCII: letters fold, '.' '-' stay */
        || (host[i] == '.') != (*p == '.'))
      return false;
    i++;
  }
  return i == hlen;
}

/* Whether host is domain or under it (any case). */
static bool under_domain(const char *domain, const char *host, size_t hlen) {
  size_t dl = strlen(domain);
  if (hlen < dl || strncasecmp(host + hlen - dl, domain, dl) != 0)
    return false;
  return hlen == dl || host[hlen - dl - 1] == '.';
}

/* The host's length without a trailing dot. */
static size_t host_len(const char *host) {
  size_t n = strlen(host);
  return n > 0 && host[n - 1] == '.' ? n - 1 : n;
}

/* Whether one of p's host patterns names host. */
static bool names_host(const struct sp_provider *p, const char *host) {
  size_t hl = host_len(host);
  for (int h = 0; h < p->nhosts; h++)
    if (host_matches(p->hosts[h], host, hl))
      return true;
  return host_matches(p->host, host, hl);
}

/* Whether host is under one of p's domains. */
static bool in_domains(const struct sp_provider *p, const char *host) {
  size_t hl = host_len(host);
  for (int d = 0; d < p->ndomains; d++)
    if (under_domain(p->domains[d], host, hl))
      return true;
  return false;
}

/* The provider a host belongs to (see smtp_probe.h). */
const struct sp_provider *sp_providers_owner(const struct sp_provider_set *set,
                                             const char *host) {
  for (size_t i = 0; set && host && i < set->n; i++)
    if (names_host(&set->items[i], host))
      return &set->items[i];
  for (size_t i = 0; set && host && i < set->n; i++)
    if (in_domains(&set->items[i], host))
      return &set->items[i];
  return NULL;
}

/* Whether host is prov's (see smtp_probe.h). */
int sp_provider_host_check(const struct sp_provider_set *set,
                           const struct sp_provider *prov, const char *host,
                           char *why, size_t whylen) {
  char shown[SP_MAX_TEXT / 2];
  if (whylen)
    why[0] = '\0';
  if (names_host(prov, host))
    return 0;
  sp_sanitize(shown, sizeof(shown), host, strlen(host));
  for (size_t i = 0; set && i < set->n; i++) {
    const struct sp_provider *o = &set->items[i];
    if (o != prov && names_host(o, host)) {
      snprintf(why, whylen, "this host (%s) is %s's, not %s's", shown, o->name,
               prov->name);
      return 1;
    }
  }
  if (in_domains(prov, host))
    return 0;
  const struct sp_provider *o = sp_providers_owner(set, host);
  if (o && o != prov) {
    snprintf(why, whylen, "this host (%s) is %s's, not %s's", shown, o->name,
             prov->name);
    return 1;
  }
  snprintf(why, whylen, "%s is not one of %s's hosts (%s%s)", shown, prov->name,
           prov->nhosts ? prov->hosts[0] : prov->host,
           prov->nhosts > 1 ? ", ..." : "");
  return 1;
}

/* ---- The built-in table -------------------------------------------------- */

static struct sp_provider_set *builtin; /* loaded once */
static char builtin_err[SP_MAX_TEXT];   /* why loading failed, or "" */
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT; /* guards the load */

/* Read a user's providers file (at most SP_MAX_PROVIDERS_FILE bytes) into
 * a new string; NULL with a message, or NULL and *missing when absent. */
static char *read_file(const char *path, size_t *len, bool *missing) {
  FILE *f = fopen(path, "r");
  struct stat st;
  *missing = f == NULL;
  if (!f)
    return NULL;
  char *buf = NULL;
  if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
      st.st_size <= SP_MAX_PROVIDERS_FILE) {
    buf = malloc((size_t)st.st_size + 1);
    *len = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    if (buf)
      buf[*len] = '\0';
  }
  fclose(f);
  return buf;
}

/* Merge the user's table into the built-in one: a provider of the same key
 * replaces the built-in one, a new one is added. */
static int merge(struct sp_provider_set *into, struct sp_provider_set *from) {
  for (size_t i = 0; i < from->n; i++) {
    struct sp_provider *p = NULL;
    for (size_t j = 0; j < into->n && !p; j++)
      if (strcasecmp(into->items[j].key, from->items[i].key) == 0)
        p = &into->items[j];
    if (!p && into->n >= SP_MAX_PROVIDERS)
      return -1;
    if (!p)
      p = &into->items[into->n++];
    else
      sp_policy_free(p->policy);
    *p = from->items[i];
    from->items[i].policy = NULL; /* moved */
  }
  return 0;
}

/* Load the built-in table and the user's file (pthread_once). */
static void builtin_load(void) {
  char err[SP_MAX_TEXT];
  builtin =
      sp_providers_parse((const char *)sp_providers_yaml, sp_providers_yaml_len,
                         "providers.yml", err, sizeof(err));
  if (!builtin) {
    snprintf(builtin_err, sizeof(builtin_err), "built-in %s", err);
    return;
  }
  const char *env = getenv("SMTP_PROBE_PROVIDERS");
  const char *path = env && *env ? env : "/etc/smtp-probe/providers.yml";
  size_t len = 0;
  bool missing = false;
  char *text = read_file(path, &len, &missing);
  if (!text && missing && !(env && *env))
    return; /* no user file: the built-in table alone */
  struct sp_provider_set *user =
      text ? sp_providers_parse(text, len, path, err, sizeof(err)) : NULL;
  if (!text)
    snprintf(err, sizeof(err), "%s: cannot read (a file of at most %d bytes)",
             path, SP_MAX_PROVIDERS_FILE);
  free(text);
  if (!user || merge(builtin, user) != 0) {
    snprintf(builtin_err, sizeof(builtin_err), "%s",
             user ? "too many providers" : err);
    sp_providers_free(builtin);
    builtin = NULL;
  }
  sp_providers_free(user);
}

/* The built-in table plus the user's file (see smtp_probe.h). */
const struct sp_provider_set *sp_providers_builtin(char *err, size_t errlen) {
  pthread_once(&builtin_once, builtin_load);
  if (!builtin && errlen)
    snprintf(err, errlen, "%s", builtin_err);
  return builtin;
}

/* ---- Requests and results ------------------------------------------------ */

/* Set a request to probe what a provider documents (see smtp_probe.h). */
int sp_request_set_provider(struct sp_request *req, const char *name, char *err,
                            size_t errlen) {
  char why[SP_MAX_TEXT];
  const struct sp_provider_set *set = sp_providers_builtin(why, sizeof(why));
  if (!set) {
    snprintf(err, errlen, "%s", why);
    return -1;
  }
  const struct sp_provider *p = sp_providers_find(set, name);
  if (!p) {
    char list[160] = "";
    size_t o = 0;
    for (size_t i = 0; i < set->n && o < sizeof(list); i++) {
      int w = snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "",
                       set->items[i].key);
      o += w > 0 ? (size_t)w : 0;
    }
    snprintf(err, errlen, "'%.40s' is not a known provider (%s)", name, list);
    return -1;
  }
  struct sp_request tmp;
  sp_request_init(&tmp);
  if (sp_policy_add_ports(p->policy, &tmp) != 0) {
    snprintf(err, errlen, "provider %s: too many ports", p->key);
    return -1;
  }
  for (int i = 0; i < tmp.nports; i++) {
    int found = -1;
    for (int j = 0; j < req->nports; j++)
      if (req->ports[j].port == tmp.ports[i].port)
        found = j;
    if (found >= 0) {
      req->ports[found].tls_mode = tmp.ports[i].tls_mode;
    } else if (sp_request_add_port(req, tmp.ports[i].port,
                                   tmp.ports[i].tls_mode,
                                   SP_ROLE_DEFAULT) != 0) {
      snprintf(err, errlen, "more than %d ports", SP_MAX_PORTS);
      return -1;
    }
  }
  req->provider = p->key; /* the table lives as long as the process */
  if (!req->host)
    req->host = p->host;
  return 0;
}

/* Check a finished batch against the provider's documentation. */
void sp_provider_check_batch(const char *provider, const char *host,
                             struct sp_batch *batch) {
  char why[SP_MAX_TEXT], hostwhy[SP_MAX_TEXT] = "";
  const struct sp_provider_set *set = sp_providers_builtin(why, sizeof(why));
  const struct sp_provider *p = sp_providers_find(set, provider);
  if (!p) {
    snprintf(hostwhy, sizeof(hostwhy), "provider %.60s: %s",
             provider ? provider : "?", set ? "unknown" : why);
  } else if (host && !sp_ip_port_is_valid(host, false)) {
    sp_provider_host_check(set, p, host, hostwhy, sizeof(hostwhy));
  }
  for (int i = 0; i < batch->nresults; i++) {
    struct sp_result *res = &batch->results[i];
    struct sp_deviation dev[SP_PROVIDER_DEVS];
    char detail[SP_MAX_TEXT];
    int n =
        p ? sp_policy_check_result(p->policy, res, dev, SP_PROVIDER_DEVS) : 0;
    if (n > 0) {
      snprintf(detail, sizeof(detail), "%s documents otherwise: %s", p->name,
               res->detail);
      sp_strlcpy(res->detail, detail, sizeof(res->detail));
    }
    if (hostwhy[0]) {
      sp_code_set_add(&res->findings, SP_POLICY_VIOLATION);
      if (n == 0 || res->code != SP_POLICY_VIOLATION)
        snprintf(detail, sizeof(detail), "host: %s", hostwhy);
      else
        snprintf(detail, sizeof(detail), "host: %s; %s", hostwhy, res->detail);
      sp_strlcpy(res->detail, detail, sizeof(res->detail));
      res->code = SP_POLICY_VIOLATION;
      res->state = sp_code_state(SP_POLICY_VIOLATION, res->role);
    } else if (p && n == 0 && res->code == SP_OK) {
      bool documented = false;
      struct sp_request tmp;
      sp_request_init(&tmp);
      sp_policy_add_ports(p->policy, &tmp);
      for (int k = 0; k < tmp.nports; k++)
        documented = documented || tmp.ports[k].port == res->port;
      if (!documented && !res->detail[0])
        snprintf(res->detail, sizeof(res->detail),
                 "port %u is not in %s's documentation", (unsigned)res->port,
                 p->name);
    }
  }
}
