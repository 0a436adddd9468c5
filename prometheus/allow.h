/*
 * allow.h - the optional target allowlist ("allowed_targets:" in the
 * modules file): which hosts, networks and ports /probe may connect to, so
 * the exporter cannot be used to reach anywhere on the network.
 *
 * Host names are matched against the name patterns before resolution; IP
 * literal targets against the networks; and, when networks are given, the
 * addresses a name resolves to are checked against them too, by the core's
 * allow_address guard before each connect.
 */
#ifndef SMTP_EXPORTER_ALLOW_H
#define SMTP_EXPORTER_ALLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp_probe.h"

/* Most entries in each list of the allowlist. */
#define ALLOW_MAX_ENTRIES 256

/* One allowed network: an address prefix. */
struct allow_network {
  int family;             /* AF_INET or AF_INET6 */
  unsigned char addr[16]; /* the network address (4 or 16 bytes used) */
  int prefix;             /* prefix length in bits */
  char text[64];          /* as written, for messages */
};

/* The allowlist; a list left out does not restrict its dimension. */
struct allowlist {
  bool enabled;                                     /* the section exists */
  char *hosts[ALLOW_MAX_ENTRIES];                   /* name patterns */
  int nhosts;                                       /* used hosts[] */
  bool hosts_set;                                   /* "hosts" given */
  struct allow_network networks[ALLOW_MAX_ENTRIES]; /* CIDR networks */
  int nnetworks;                                    /* used networks[] */
  bool networks_set;                                /* "networks" given */
  uint16_t ports[ALLOW_MAX_ENTRIES];                /* allowed ports */
  int nports;                                       /* used ports[] */
  bool ports_set;                                   /* "ports" given */
};

/* Parse "ADDR/PREFIX" (or a bare address: a single host) into out.
 * Returns 0, or -1 when it is not a network. */
int allow_parse_network(const char *text, struct allow_network *out);

/* Check a host pattern: a name ("mail.example.com") or "*." followed by a
 * name ("*.example.net": any name below example.net). Returns 0, or -1. */
int allow_check_pattern(const char *pattern);

/* Decide whether a request may run: its host against the patterns or
 * networks, every port against the ports. Returns true when allowed; else
 * false with one line saying why in why. A disabled list allows all. */
bool allow_request(const struct allowlist *a, const struct sp_request *req,
                   char *why, size_t whylen);

/* The core's allow_address guard (ctx: the struct allowlist): with
 * "networks" given, every address a probe connects to (names resolved by
 * the core included) must lie inside one of them. */
bool allow_address(const struct sockaddr *addr, void *ctx);

/* Free the strings of an allowlist (not the struct itself). */
void allow_free(struct allowlist *a);

#endif /* SMTP_EXPORTER_ALLOW_H */
