/*
 * target.c - from a /probe request to a core request (see target.h).
 */
#include "target.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse a port number "1".."65535"; -1 when it is not one. */
static int parse_port(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 5)
    return -1;
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return (v >= 1 && v <= 65535) ? (int)v : -1;
}

/* True when s is a host name of sane characters or an IPv4 literal. */
static bool valid_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= SP_MAX_HOST || s[0] == '-' || s[0] == '.')
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
      return false;
  }
  return true;
}

/* True when s is an IPv6 literal. */
static bool is_ipv6(const char *s) {
  struct in6_addr a;
  return inet_pton(AF_INET6, s, &a) == 1;
}

/* Parse a target parameter (see target.h). */
int target_parse(const char *text, struct target *t, char *err, size_t errlen) {
  memset(t, 0, sizeof(*t));
  size_t len = strnlen(text, SP_MAX_HOST + 16);
  if (len == 0) {
    snprintf(err, errlen, "target is empty");
    return -1;
  }
  if (len >= SP_MAX_HOST + 8) {
    snprintf(err, errlen, "target is too long");
    return -1;
  }
  char host[SP_MAX_HOST + 16];
  const char *portstr = NULL;
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (close == NULL || (size_t)(close - text - 1) >= sizeof(host)) {
      snprintf(err, errlen, "target: missing ']' after an IPv6 address");
      return -1;
    }
    memcpy(host, text + 1, (size_t)(close - text - 1));
    host[close - text - 1] = '\0';
    if (!is_ipv6(host)) {
      snprintf(err, errlen, "target: [%.64s] is not an IPv6 address", host);
      return -1;
    }
    if (close[1] == ':')
      portstr = close + 2;
    else if (close[1] != '\0') {
      snprintf(err, errlen, "target: expected :PORT after ']'");
      return -1;
    }
  } else {
    const char *colon = strchr(text, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL) {
      /* more than one colon: a bare IPv6 literal, no port */
      snprintf(host, sizeof(host), "%s", text);
      if (!is_ipv6(host)) {
        snprintf(err, errlen,
                 "target: not HOST:PORT nor an IPv6 address (write IPv6 "
                 "with a port as [::1]:587)");
        return -1;
      }
    } else {
      size_t hlen = colon ? (size_t)(colon - text) : len;
      memcpy(host, text, hlen);
      host[hlen] = '\0';
      if (colon != NULL)
        portstr = colon + 1;
      if (!valid_name(host)) {
        snprintf(err, errlen,
                 "target: invalid host \"%.64s\" (expected HOST, HOST:PORT or "
                 "[IPv6]:PORT)",
                 host);
        return -1;
      }
    }
  }
  if (strlen(host) >= sizeof(t->host)) {
    snprintf(err, errlen, "target: host is too long");
    return -1;
  }
  if (portstr != NULL) {
    t->port = parse_port(portstr);
    if (t->port < 0) {
      snprintf(err, errlen, "target: invalid port \"%.16s\" (1..65535)",
               portstr);
      return -1;
    }
  }
  memcpy(t->host, host, strlen(host) + 1); /* length checked above */
  return 0;
}

/* The probe's time budget in seconds (see target.h). */
double target_budget(double module_timeout_s, const char *header,
                     double offset_s, char *why, size_t whylen) {
  double budget = module_timeout_s;
  snprintf(why, whylen,
           "timeout %.3fs: the module's (no scrape timeout "
           "header)",
           budget);
  if (header == NULL || header[0] == '\0')
    return budget;
  errno = 0;
  char *end = NULL;
  double scrape = strtod(header, &end);
  if (errno != 0 || end == header || *end != '\0' || !isfinite(scrape) ||
      scrape <= 0) {
    snprintf(why, whylen,
             "timeout %.3fs: the module's (scrape timeout header unusable)",
             budget);
    return budget;
  }
  double avail = scrape - offset_s;
  if (avail <= 0)
    avail = scrape / 2;
  if (avail < budget) {
    budget = avail;
    snprintf(why, whylen,
             "timeout %.3fs: scrape timeout %.3fs minus offset (module's "
             "%.3fs is longer)",
             budget, scrape, module_timeout_s);
  } else {
    snprintf(why, whylen,
             "timeout %.3fs: the module's (scrape timeout %.3fs minus offset "
             "is longer)",
             budget, scrape);
  }
  return budget;
}

/* Build the core request for a module and target (see target.h): a copy
 * of the module's template, validated at load with the same ports; only
 * host, ports and timeout are set here, so nothing is parsed or checked
 * again per probe (the engine checks the fields on submit). */
int target_request(const struct module *mod, const struct target *t,
                   double timeout_s, bool trace, struct sp_request *req,
                   char *err, size_t errlen) {
  module_apply(mod, req);
  req->host = t->host;
  req->timeout_s = timeout_s;
  req->trace = trace;
  if (t->port > 0) { /* just this port, with the module's tls and role */
    req->nports = 0;
    sp_request_add_port(req, (uint16_t)t->port, SP_TLS_AUTO, SP_ROLE_DEFAULT);
  } else if (req->nports == 0 && mod->policy != NULL) {
    sp_policy_add_ports(mod->policy, req); /* with the modes it expects */
  }
  if (req->nports == 0) {
    snprintf(err, errlen,
             "module \"%s\" lists no ports (nor a policy with ports): give "
             "the target as HOST:PORT",
             mod->name);
    return -1;
  }
  if (req->banner_wait_s >= req->timeout_s)
    req->banner_wait_s = 0; /* the core picks its share of a short budget */
  return 0;
}
