/*
 * policy.c - a port policy per environment (YAML, libyaml) and the check
 * of probe results against it.
 *
 * Format (every key optional but "ports"):
 *
 *   ports:
 *     587:
 *       state: open          # open | closed
 *       tls: starttls        # starttls | implicit | none | any
 *       auth: after_tls      # after_tls | never | any
 *       mechanisms: [PLAIN, LOGIN]   # allowed AUTH mechanisms after TLS
 *       min_tls: "1.2"       # lowest acceptable TLS version
 *     2525:
 *       state: closed
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

/* Bytes a policy file may have (a few dozen lines in practice). */
#define SP_MAX_POLICY_FILE (256 * 1024)

#include "policy_internal.h"
#include "probe_internal.h"

/* What a policy says about AUTH. */
enum auth_rule {
  AUTH_ANY,       /* no rule */
  AUTH_AFTER_TLS, /* offered after TLS, never before */
  AUTH_NEVER      /* never offered */
};

/* The rules for one port. */
struct port_rule {
  uint16_t port;        /* the port */
  bool closed;          /* expected closed */
  enum sp_tls_mode tls; /* expected TLS mode; SP_TLS_AUTO: any */
  enum auth_rule auth;  /* AUTH rule */
  char mechanisms[128]; /* allowed mechanisms, space separated; "": any */
  int min_tls;          /* lowest TLS version (0x0303 ...); 0: none */
};

/* A loaded policy. */
struct sp_policy {
  struct port_rule rules[SP_MAX_PORTS]; /* one per port */
  int nrules;                           /* how many */
};

/* A scalar node's text, or NULL when the node is not a scalar. */
static const char *scalar(yaml_node_t *n) {
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value
                                          : NULL;
}

/* True for a SASL mechanism name: 1-20 of A-Z, 0-9, '-', '_' (RFC 4422). */
static bool mechanism_name_ok(const char *m) {
  size_t n = strlen(m);
  if (n == 0 || n > 20)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = m[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
          (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  }
  return true;
}

/* Read one port's mapping into rule; message with line number on error. */
static int parse_port(yaml_document_t *doc, yaml_node_t *map,
                      struct port_rule *rule, char *err, size_t errlen) {
  if (map->type != YAML_MAPPING_NODE) {
    snprintf(err, errlen, "policy line %lu: port %u: expected a mapping",
             (unsigned long)map->start_mark.line + 1, (unsigned)rule->port);
    return -1;
  }
  for (yaml_node_pair_t *pr = map->data.mapping.pairs.start;
       pr < map->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = yaml_document_get_node(doc, pr->key);
    yaml_node_t *vn = yaml_document_get_node(doc, pr->value);
    const char *key = scalar(kn);
    const char *val = scalar(vn);
    unsigned long line = (unsigned long)kn->start_mark.line + 1;
    bool ok = true;
    if (!key) {
      ok = false;
    } else if (strcmp(key, "state") == 0) {
      ok = val && (strcmp(val, "open") == 0 || strcmp(val, "closed") == 0);
      rule->closed = ok && strcmp(val, "closed") == 0;
    } else if (strcmp(key, "tls") == 0) {
      int m = val && strcmp(val, "any") != 0 ? sp_tls_mode_from_name(val)
                                             : (val ? SP_TLS_AUTO : -1);
      ok = m >= 0;
      rule->tls = ok ? (enum sp_tls_mode)m : SP_TLS_AUTO;
    } else if (strcmp(key, "auth") == 0) {
      ok = val != NULL;
      if (ok && strcmp(val, "after_tls") == 0)
        rule->auth = AUTH_AFTER_TLS;
      else if (ok && strcmp(val, "never") == 0)
        rule->auth = AUTH_NEVER;
      else if (ok && strcmp(val, "any") == 0)
        rule->auth = AUTH_ANY;
      else
        ok = false;
    } else if (strcmp(key, "mechanisms") == 0) {
      ok = vn->type == YAML_SEQUENCE_NODE;
      for (yaml_node_item_t *it = ok ? vn->data.sequence.items.start : NULL;
           ok && it < vn->data.sequence.items.top; it++) {
        const char *m = scalar(yaml_document_get_node(doc, *it));
        size_t cur = strlen(rule->mechanisms);
        ok = m && mechanism_name_ok(m) && strlen(m) < 32 &&
             cur + strlen(m) + 2 < sizeof(rule->mechanisms);
        if (ok)
          snprintf(rule->mechanisms + cur, sizeof(rule->mechanisms) - cur,
                   "%s%s", cur ? " " : "", m);
      }
    } else if (strcmp(key, "min_tls") == 0) {
      rule->min_tls = sp_tls_version_from_name(val);
      ok = rule->min_tls != 0;
    } else {
      snprintf(err, errlen, "policy line %lu: port %u: unknown key \"%.40s\"",
               line, (unsigned)rule->port, key);
      return -1;
    }
    if (!ok) {
      snprintf(err, errlen, "policy line %lu: port %u: bad value for %s", line,
               (unsigned)rule->port, key ? key : "(non-scalar key)");
      return -1;
    }
  }
  return 0;
}

/* Walk the document: a mapping with one key, "ports". */
static int parse_doc(yaml_document_t *doc, struct sp_policy *pol, char *err,
                     size_t errlen) {
  yaml_node_t *root = yaml_document_get_root_node(doc);
  if (!root || root->type != YAML_MAPPING_NODE) {
    snprintf(err, errlen, "policy: expected a mapping with \"ports\"");
    return -1;
  }
  yaml_node_t *ports = NULL;
  for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
       pr < root->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = yaml_document_get_node(doc, pr->key);
    const char *key = scalar(kn);
    if (key && strcmp(key, "ports") == 0) {
      ports = yaml_document_get_node(doc, pr->value);
    } else {
      snprintf(err, errlen, "policy line %lu: unknown key \"%.40s\"",
               (unsigned long)kn->start_mark.line + 1, key ? key : "?");
      return -1;
    }
  }
  return sp_policy_parse_ports(doc, ports, pol, err, errlen);
}

/* Read a "ports" mapping (port number -> rules) into pol (probe_internal.h:
 * provider presets use the same per-port format). */
int sp_policy_parse_ports(yaml_document_t *doc, yaml_node_t *ports,
                          struct sp_policy *pol, char *err, size_t errlen) {
  if (!ports || ports->type != YAML_MAPPING_NODE) {
    snprintf(err, errlen, "policy: \"ports\" must map port numbers to rules");
    return -1;
  }
  for (yaml_node_pair_t *pr = ports->data.mapping.pairs.start;
       pr < ports->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = yaml_document_get_node(doc, pr->key);
    const char *key = scalar(kn);
    unsigned long line = (unsigned long)kn->start_mark.line + 1;
    char *end = NULL;
    long port = key ? strtol(key, &end, 10) : 0;
    if (!key || *end != '\0' || port < 1 || port > 65535) {
      snprintf(err, errlen, "policy line %lu: \"%.20s\" is not a port number",
               line, key ? key : "?");
      return -1;
    }
    if (pol->nrules >= SP_MAX_PORTS) {
      snprintf(err, errlen, "policy line %lu: more than %d ports", line,
               SP_MAX_PORTS);
      return -1;
    }
    for (int i = 0; i < pol->nrules; i++)
      if (pol->rules[i].port == port) {
        snprintf(err, errlen, "policy line %lu: port %ld given twice", line,
                 port);
        return -1;
      }
    struct port_rule *rule = &pol->rules[pol->nrules++];
    memset(rule, 0, sizeof(*rule));
    rule->port = (uint16_t)port;
    rule->tls = SP_TLS_AUTO;
    if (parse_port(doc, yaml_document_get_node(doc, pr->value), rule, err,
                   errlen) != 0)
      return -1;
  }
  if (pol->nrules == 0) {
    snprintf(err, errlen, "policy: no ports");
    return -1;
  }
  return 0;
}

/* Load a policy from a YAML file. */
struct sp_policy *sp_policy_load(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "policy %s: cannot open", path);
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size > SP_MAX_POLICY_FILE) {
    snprintf(err, errlen, "policy %s: not a regular file of at most %d bytes",
             path, SP_MAX_POLICY_FILE);
    fclose(f);
    return NULL;
  }
  struct sp_policy *pol = calloc(1, sizeof(*pol));
  yaml_parser_t parser;
  yaml_document_t doc;
  bool have_doc = false;
  int rc = -1;
  if (pol && yaml_parser_initialize(&parser)) {
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
      snprintf(err, errlen, "policy line %lu: %s",
               (unsigned long)parser.problem_mark.line + 1,
               parser.problem ? parser.problem : "YAML error");
    } else {
      have_doc = true;
      rc = parse_doc(&doc, pol, err, errlen);
    }
    if (have_doc)
      yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
  }
  fclose(f);
  if (rc != 0) {
    free(pol);
    return NULL;
  }
  return pol;
}

/* An empty policy for sp_policy_parse_ports (policy_internal.h). */
struct sp_policy *sp_policy_new(void) {
  return calloc(1, sizeof(struct sp_policy));
}

/* Free a policy. */
void sp_policy_free(struct sp_policy *pol) {
  free(pol);
}

/* Add the policy's ports to a request, each with the policy's TLS mode. */
int sp_policy_add_ports(const struct sp_policy *pol, struct sp_request *req) {
  for (int i = 0; i < pol->nrules; i++)
    if (sp_request_add_port(req, pol->rules[i].port, pol->rules[i].tls,
                            SP_ROLE_DEFAULT) != 0)
      return -1;
  return 0;
}

/* The numeric version of a result's "TLSv1.x" text; 0 when none. */
static int result_tls_version(const struct sp_result *res) {
  return res->tls ? sp_tls_version_from_name(res->tls_version) : 0;
}

/* Record one deviation, if there is room. */
static void deviate(struct sp_deviation *out, int max, int *n, uint16_t port,
                    const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Record one deviation, if there is room. */
static void deviate(struct sp_deviation *out, int max, int *n, uint16_t port,
                    const char *rule, const char *fmt, ...) {
  if (*n >= max)
    return;
  struct sp_deviation *d = &out[(*n)++];
  d->port = port;
  d->address[0] = '\0';
  sp_strlcpy(d->rule, rule, sizeof(d->rule));
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->detail, sizeof(d->detail), fmt, ap);
  va_end(ap);
}

/* True when every word of list is in allowed (both space separated). */
static bool mechs_allowed(const char *list, const char *allowed, char *extra,
                          size_t extralen) {
  bool ok = true;
  size_t o = 0;
  extra[0] = '\0';
  while (*list) {
    size_t l = strcspn(list, " ");
    bool found = false;
    const char *a = allowed;
    while (*a) {
      size_t al = strcspn(a, " ");
      if (al == l && strncasecmp(a, list, l) == 0)
        found = true;
      a += al;
      while (*a == ' ')
        a++;
    }
    if (!found) {
      ok = false;
      int w = snprintf(extra + o, extralen - o, "%s%.*s", o ? " " : "", (int)l,
                       list);
      if (w > 0 && (size_t)w < extralen - o)
        o += (size_t)w;
    }
    list += l;
    while (*list == ' ')
      list++;
  }
  return ok;
}

/* True for codes that mean "nothing answers on this port". */
static bool port_closed(enum sp_code code) {
  return code == SP_CONNECT_REFUSED || code == SP_CONNECT_TIMEOUT ||
         code == SP_NETWORK_UNREACHABLE;
}

/* Check one result against its port's rule; returns deviations added. */
static int check_one(const struct port_rule *r, struct sp_result *res,
                     struct sp_deviation *out, int max, int *n) {
  int before = *n;
  if (r->closed) {
    if (!port_closed(res->code))
      deviate(out, max, n, r->port, "state",
              "the port answers, the policy says closed");
    return *n - before;
  }
  if (port_closed(res->code) || res->code == SP_DNS_ERROR) {
    deviate(out, max, n, r->port, "state",
            "the port does not answer (%s), the policy says open",
            sp_code_name(res->code));
    return *n - before;
  }
  if (r->tls == SP_TLS_STARTTLS && (!res->tls || res->implicit_tls))
    deviate(out, max, n, r->port, "tls", "STARTTLS expected, got %s",
            sp_code_name(res->code));
  if (r->tls == SP_TLS_IMPLICIT && (!res->tls || !res->implicit_tls))
    deviate(out, max, n, r->port, "tls", "implicit TLS expected, got %s",
            sp_code_name(res->code));
  if (r->tls == SP_TLS_NONE && res->tls)
    deviate(out, max, n, r->port, "tls", "plaintext expected, got TLS");
  bool auth_plain = res->caps_plain.flags & SP_CAP_AUTH;
  bool auth_tls = res->caps_tls.flags & SP_CAP_AUTH;
  if (r->auth == AUTH_AFTER_TLS && auth_plain)
    deviate(out, max, n, r->port, "auth", "AUTH %s is offered before TLS",
            res->caps_plain.auth_mechs);
  if (r->auth == AUTH_AFTER_TLS && res->caps_tls.seen && !auth_tls)
    deviate(out, max, n, r->port, "auth", "AUTH is not offered after TLS");
  if (r->auth == AUTH_NEVER && (auth_plain || auth_tls))
    deviate(out, max, n, r->port, "auth", "AUTH %s is offered",
            auth_tls ? res->caps_tls.auth_mechs : res->caps_plain.auth_mechs);
  char extra[128];
  if (r->mechanisms[0] && auth_tls &&
      !mechs_allowed(res->caps_tls.auth_mechs, r->mechanisms, extra,
                     sizeof(extra)))
    deviate(out, max, n, r->port, "mechanisms",
            "mechanisms %s are offered, allowed: %s", extra, r->mechanisms);
  int v = result_tls_version(res);
  if (r->min_tls && res->tls && v < r->min_tls)
    deviate(out, max, n, r->port, "min_tls", "%s is below the policy's minimum",
            res->tls_version);
  return *n - before;
}

/* Check one result against its port's rule; mark it when it deviates. */
int sp_policy_check_result(const struct sp_policy *pol, struct sp_result *res,
                           struct sp_deviation *out, int max) {
  const struct port_rule *r = NULL;
  for (int k = 0; k < pol->nrules; k++)
    if (pol->rules[k].port == res->port)
      r = &pol->rules[k];
  if (!r)
    return 0;
  int n = 0;
  int added = check_one(r, res, out, max, &n);
  for (int k = 0; k < n; k++)
    if (res->per_address)
      sp_strlcpy(out[k].address, res->address, sizeof(out[k].address));
  if (added > 0) {
    sp_code_set_add(&res->findings, SP_POLICY_VIOLATION);
    res->code = SP_POLICY_VIOLATION;
    res->state = sp_code_state(SP_POLICY_VIOLATION, res->role);
    snprintf(res->detail, sizeof(res->detail), "%s: %s%s", out[0].rule,
             out[0].detail, added > 1 ? " (and more)" : "");
  } else if (r->closed) {
    res->code = SP_OK;
    res->state = SP_STATE_OK;
    snprintf(res->detail, sizeof(res->detail), "closed, as the policy expects");
  }
  return n;
}

/* Check a batch against the policy: each result in turn. */
int sp_policy_check(const struct sp_policy *pol, struct sp_batch *batch,
                    struct sp_deviation *out, int max) {
  int n = 0;
  for (int i = 0; i < batch->nresults; i++)
    n += sp_policy_check_result(pol, &batch->results[i], out + n, max - n);
  return n;
}
