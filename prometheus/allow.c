/*
 * allow.c - the target allowlist (see allow.h).
 */
#include "allow.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Parse "ADDR/PREFIX" or a bare address (see allow.h). */
int allow_parse_network(const char *text, struct allow_network *out) {
  char addr[64];
  memset(out, 0, sizeof(*out));
  size_t len = strlen(text);
  if (len == 0 || len >= sizeof(addr) || len >= sizeof(out->text))
    return -1;
  memcpy(out->text, text, len + 1);
  const char *slash = strchr(text, '/');
  size_t alen = slash ? (size_t)(slash - text) : len;
  memcpy(addr, text, alen);
  addr[alen] = '\0';
  int max;
  if (inet_pton(AF_INET, addr, out->addr) == 1) {
    out->family = AF_INET;
    max = 32;
  } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
    out->family = AF_INET6;
    max = 128;
  } else {
    return -1;
  }
  out->prefix = max;
  if (slash != NULL) {
    const char *p = slash + 1;
    size_t n = strlen(p);
    if (n == 0 || n > 3)
      return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
      if (p[i] < '0' || p[i] > '9')
        return -1;
      v = v * 10 + (p[i] - '0');
    }
    if (v > max)
      return -1;
    out->prefix = (int)v;
  }
  /* host bits must be zero: 192.0.2.1/24 is almost certainly a typo */
  for (int bit = out->prefix; bit < max; bit++)
    if (out->addr[bit / 8] & (0x80 >> (bit % 8)))
      return -1;
  return 0;
}

/* True when c may appear in a DNS name label (as target.c accepts). */
static bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* True when s is a dotted name: labels of name characters, no empty one. */
static bool dotted_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= SP_MAX_HOST || s[0] == '.' || s[n - 1] == '.')
    return false;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '.') {
      if (s[i + 1] == '.')
        return false;
    } else if (!name_char(s[i])) {
      return false;
    }
  }
  return true;
}

/* Check a host pattern (see allow.h). */
int allow_check_pattern(const char *pattern) {
  const char *name = pattern;
  if (strncmp(pattern, "*.", 2) == 0)
    name = pattern + 2;
  if (!dotted_name(name))
    return -1;
  /* a pattern whose last label is numeric would look like an address */
  const char *last = strrchr(name, '.');
  last = last ? last + 1 : name;
  if (last[0] >= '0' && last[0] <= '9')
    return -1;
  return 0;
}

/* True when a (normalised) host name matches one pattern. */
static bool pattern_match(const char *pattern, const char *host) {
  if (strncmp(pattern, "*.", 2) != 0)
    return strcasecmp(pattern, host) == 0;
  const char *suffix = pattern + 1; /* ".example.net" */
  size_t hl = strlen(host);
  size_t sl = strlen(suffix);
  return hl > sl && strcasecmp(host + hl - sl, suffix) == 0;
}

/* True when the address bytes lie inside the network. */
static bool network_match(const struct allow_network *net, int family,
                          const unsigned char *addr) {
  if (net->family != family)
    return false;
  int full = net->prefix / 8;
  if (memcmp(net->addr, addr, (size_t)full) != 0)
    return false;
  int rest = net->prefix % 8;
  if (rest == 0)
    return true;
  unsigned char mask = (unsigned char)(0xff << (8 - rest));
  return (net->addr[full] & mask) == (addr[full] & mask);
}

/* Decide for the host alone; false with a reason in why. */
static bool allow_host(const struct allowlist *a, const char *host, char *why,
                       size_t whylen) {
  char name[SP_MAX_HOST];
  snprintf(name, sizeof(name), "%s", host);
  size_t n = strlen(name);
  if (n > 1 && name[n - 1] == '.') /* "mail.example.com." is the same name */
    name[n - 1] = '\0';
  unsigned char addr[16];
  int family = 0;
  if (inet_pton(AF_INET, name, addr) == 1)
    family = AF_INET;
  else if (inet_pton(AF_INET6, name, addr) == 1)
    family = AF_INET6;
  if (!a->hosts_set && !a->networks_set)
    return true; /* only the ports are restricted */
  if (family != 0) {
    for (int i = 0; i < a->nnetworks; i++)
      if (network_match(&a->networks[i], family, addr))
        return true;
    snprintf(why, whylen,
             "target %.64s is not in allowed_targets.networks of the "
             "modules file",
             host);
    return false;
  }
  /* A name whose last label starts with a digit is a numeric address in a
   * form inet_pton refuses (2130706433, 0x7f.1, 127.1): a resolver might
   * still take it as an address, so it never matches a name pattern. */
  const char *last = strrchr(name, '.');
  last = last ? last + 1 : name;
  if (last[0] >= '0' && last[0] <= '9') {
    snprintf(why, whylen,
             "target %.64s looks numeric but is not a dotted-quad IPv4 or an "
             "IPv6 address; refused",
             host);
    return false;
  }
  for (int i = 0; i < a->nhosts; i++)
    if (pattern_match(a->hosts[i], name))
      return true;
  snprintf(why, whylen,
           "target %.64s matches no allowed_targets.hosts pattern of the "
           "modules file",
           host);
  return false;
}

/* Decide whether a request may run (see allow.h). */
bool allow_request(const struct allowlist *a, const struct sp_request *req,
                   char *why, size_t whylen) {
  if (a == NULL || !a->enabled)
    return true;
  if (!allow_host(a, req->host, why, whylen))
    return false;
  if (!a->ports_set)
    return true;
  for (int p = 0; p < req->nports; p++) {
    bool ok = false;
    for (int i = 0; i < a->nports && !ok; i++)
      ok = a->ports[i] == req->ports[p].port;
    if (!ok) {
      snprintf(why, whylen,
               "port %u is not in allowed_targets.ports of the modules file",
               (unsigned)req->ports[p].port);
      return false;
    }
  }
  return true;
}

/* Free the strings of an allowlist (see allow.h). */
void allow_free(struct allowlist *a) {
  for (int i = 0; i < a->nhosts; i++)
    free(a->hosts[i]);
  a->nhosts = 0;
}

/* The core's guard: with networks given, the address must be inside one. */
bool allow_address(const struct sockaddr *addr, void *ctx) {
  const struct allowlist *a = ctx;
  if (a == NULL || !a->enabled || !a->networks_set)
    return true;
  const unsigned char *bytes;
  if (addr->sa_family == AF_INET)
    bytes =
        (const unsigned char *)&((const struct sockaddr_in *)addr)->sin_addr;
  else if (addr->sa_family == AF_INET6)
    bytes =
        (const unsigned char *)&((const struct sockaddr_in6 *)addr)->sin6_addr;
  else
    return false;
  for (int i = 0; i < a->nnetworks; i++)
    if (network_match(&a->networks[i], addr->sa_family, bytes))
      return true;
  return false;
}
