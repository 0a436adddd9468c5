/*
 * request.c - request defaults and validation, shared by all adapters.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "probe_internal.h"
#include "smtp_probe.h"

/* Fill a request with defaults: auto TLS, 10 s, verification on. */
void sp_request_init(struct sp_request *req) {
  memset(req, 0, sizeof(*req));
  req->timeout_s = 10.0;
  req->banner_wait_s = 0.0;
  req->cert_warn_days = -1;
  req->cert_crit_days = -1;
  req->family = SP_FAMILY_ANY;
}

/* Add a port; -1 when the request already holds SP_MAX_PORTS. */
int sp_request_add_port(struct sp_request *req, uint16_t port,
                        enum sp_tls_mode mode, enum sp_role role) {
  if (req->nports >= SP_MAX_PORTS)
    return -1;
  req->ports[req->nports].port = port;
  req->ports[req->nports].tls_mode = mode;
  req->ports[req->nports].role = role;
  req->nports++;
  return 0;
}

/* True when s is a host name or IP literal of sane shape. */
bool sp_host_is_valid(const char *s) {
  size_t n = strnlen(s, SP_MAX_HOST);
  if (n == 0 || n >= SP_MAX_HOST)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
              c == ':' || c == '%';
    if (!ok)
      return false;
  }
  return true;
}

/* True when s is an IPv4 or IPv6 address, with_port: with an optional
 * :port. */
bool sp_ip_port_is_valid(const char *s, bool with_port) {
  char host[64];
  const char *port = NULL;
  size_t n = strnlen(s, sizeof(host));
  if (n == 0 || n >= sizeof(host))
    return false;
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (!end || (size_t)(end - s - 1) >= sizeof(host))
      return false;
    memcpy(host, s + 1, (size_t)(end - s - 1));
    host[end - s - 1] = '\0';
    if (end[1] == ':')
      port = end + 2;
    else if (end[1] != '\0')
      return false;
  } else {
    const char *colon = strchr(s, ':');
    if (colon && strchr(colon + 1, ':'))
      colon = NULL; /* bare IPv6 */
    size_t hl = colon ? (size_t)(colon - s) : n;
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (colon)
      port = colon + 1;
  }
  unsigned char buf[16];
  if (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1)
    return false;
  if (port && !with_port)
    return false;
  if (port) {
    char *end = NULL;
    long p = strtol(port, &end, 10);
    if (*port == '\0' || *end != '\0' || p < 1 || p > 65535)
      return false;
  }
  return true;
}

/* True when s is a usable envelope address: printable, no spaces, no
 * angle brackets, not too long (it goes inside <...> on one line). */
static bool address_is_valid(const char *s) {
  size_t n = strnlen(s, SP_MAX_HOST);
  if (n == 0 || n >= SP_MAX_HOST)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>')
      return false;
  }
  return true;
}

/* Check the authentication and trial fields. */
static int validate_auth(const struct sp_request *req, char *err,
                         size_t errlen) {
  if (req->auth_user) {
    if (!address_is_valid(req->auth_user)) {
      snprintf(err, errlen, "auth_user: empty, too long or not printable");
      return -1;
    }
    if (!req->auth_secret || !*req->auth_secret ||
        strnlen(req->auth_secret, 512) >= 512) {
      snprintf(err, errlen,
               "auth_secret: a password or token (from a file or the "
               "environment) is needed with auth_user");
      return -1;
    }
    for (int i = 0; i < req->nports; i++)
      if (req->ports[i].tls_mode == SP_TLS_NONE ||
          (req->ports[i].tls_mode == SP_TLS_AUTO &&
           req->tls_mode == SP_TLS_NONE)) {
        snprintf(err, errlen,
                 "auth: credentials are never sent without TLS, and port %u "
                 "has TLS mode none",
                 (unsigned)req->ports[i].port);
        return -1;
      }
  }
  if (req->auth_mech) {
    if (!sp_auth_mech_canonical(req->auth_mech)) {
      snprintf(err, errlen,
               "auth_mech: expected PLAIN, LOGIN, CRAM-MD5 or XOAUTH2");
      return -1;
    }
    if (!req->auth_user) {
      snprintf(err, errlen, "auth_mech: needs auth_user");
      return -1;
    }
  }
  if (req->mail_from && !address_is_valid(req->mail_from)) {
    snprintf(err, errlen, "mail_from: not a usable address");
    return -1;
  }
  if (req->rcpt_to && (!address_is_valid(req->rcpt_to) || !req->mail_from)) {
    snprintf(err, errlen, "rcpt_to: not a usable address, or no mail_from");
    return -1;
  }
  if (req->send_message && (!req->mail_from || !req->rcpt_to)) {
    snprintf(err, errlen, "send: needs both mail_from and rcpt_to");
    return -1;
  }
  if (req->min_tls_version != 0 &&
      (req->min_tls_version < 0x0301 || req->min_tls_version > 0x0304)) {
    snprintf(err, errlen, "min_tls_version: expected TLS 1.0 to 1.3");
    return -1;
  }
  return 0;
}

/* Check a request's fields, without touching files (see probe_internal.h). */
int sp_request_check_fields(const struct sp_request *req, char *err,
                            size_t errlen) {
  if (!req->host || !sp_host_is_valid(req->host)) {
    snprintf(err, errlen, "host: missing or not a valid host name or address");
    return -1;
  }
  if (req->nports < 1 || req->nports > SP_MAX_PORTS) {
    snprintf(err, errlen, "ports: between 1 and %d ports needed", SP_MAX_PORTS);
    return -1;
  }
  for (int i = 0; i < req->nports; i++) {
    const struct sp_port_spec *p = &req->ports[i];
    if (p->port == 0) {
      snprintf(err, errlen, "ports: 0 is not a valid port");
      return -1;
    }
    if ((unsigned)p->tls_mode > SP_TLS_IMPLICIT) {
      snprintf(err, errlen, "tls: invalid TLS mode for port %u",
               (unsigned)p->port);
      return -1;
    }
    if ((unsigned)p->role > SP_ROLE_RELAY) {
      snprintf(err, errlen, "role: invalid role for port %u",
               (unsigned)p->port);
      return -1;
    }
    for (int j = 0; j < i; j++)
      if (req->ports[j].port == p->port) {
        snprintf(err, errlen, "ports: port %u given twice", (unsigned)p->port);
        return -1;
      }
  }
  if (!(req->timeout_s > 0.0) || req->timeout_s > 3600.0) {
    snprintf(err, errlen, "timeout: must be above 0 and at most 3600 s");
    return -1;
  }
  if (req->banner_wait_s > req->timeout_s) {
    snprintf(err, errlen, "banner_wait: must not exceed the timeout");
    return -1;
  }
  if (req->sni && !sp_host_is_valid(req->sni)) {
    snprintf(err, errlen, "sni: not a valid host name");
    return -1;
  }
  if (req->ehlo_name && !sp_host_is_valid(req->ehlo_name)) {
    snprintf(err, errlen, "ehlo: not a valid host name");
    return -1;
  }
  if (req->source) {
    unsigned char buf[16];
    if (inet_pton(AF_INET, req->source, buf) != 1 &&
        inet_pton(AF_INET6, req->source, buf) != 1) {
      snprintf(err, errlen, "source: not an IP address");
      return -1;
    }
  }
  if (req->dns_server && !sp_ip_port_is_valid(req->dns_server, true)) {
    snprintf(err, errlen,
             "dns_server: expected ADDR[:PORT] with an IP address");
    return -1;
  }
  if (req->cert_warn_days >= 0 && req->cert_crit_days > req->cert_warn_days) {
    snprintf(err, errlen,
             "cert_days: the critical days must not exceed the warning days");
    return -1;
  }
  if ((unsigned)req->tls_mode > SP_TLS_IMPLICIT ||
      (unsigned)req->role > SP_ROLE_RELAY) {
    snprintf(err, errlen, "tls/role: invalid request-wide TLS mode or role");
    return -1;
  }
  if ((unsigned)req->proxy_protocol > SP_PROXY_V2) {
    snprintf(err, errlen, "proxy_protocol: invalid version");
    return -1;
  }
  if (!req->client_cert != !req->client_key) {
    snprintf(err, errlen,
             "client_cert: client_cert and client_key go together");
    return -1;
  }
  if ((unsigned)req->family > SP_FAMILY_IPV6) {
    snprintf(err, errlen, "family: invalid address family");
    return -1;
  }
  return validate_auth(req, err, errlen);
}

/* Warnings about a valid request (see smtp_probe.h). */
void sp_request_warnings(const struct sp_request *req, char *warn,
                         size_t warnlen) {
  if (warnlen)
    warn[0] = '\0';
  char w[SP_MAX_TEXT] = "", err[SP_MAX_TEXT];
  if (req->client_key &&
      sp_secret_file_warning(req->client_key, w, sizeof(w), err, sizeof(err)) ==
          0 &&
      w[0])
    snprintf(warn, warnlen, "client_key: %s", w);
}

/* Check a request; write a message naming the bad field. */
int sp_request_validate(const struct sp_request *req, char *err,
                        size_t errlen) {
  if (sp_request_check_fields(req, err, errlen) != 0)
    return -1;
  const char *files[][2] = {{"cafile", req->cafile},
                            {"client_cert", req->client_cert},
                            {"client_key", req->client_key}};
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    if (!files[i][1])
      continue;
    FILE *f = fopen(files[i][1], "r");
    if (!f) {
      snprintf(err, errlen, "%s: cannot open %.200s", files[i][0], files[i][1]);
      return -1;
    }
    fclose(f);
  }
  return 0;
}
