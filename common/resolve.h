/*
 * resolve.h - the core's asynchronous resolver (c-ares), internal.
 */
#ifndef SP_RESOLVE_H
#define SP_RESOLVE_H

#include <stdbool.h>
#include <sys/socket.h>

#include "smtp_probe.h"

struct sp_dns;

/* Called when c-ares wants a socket watched (or forgotten: both false). */
typedef void (*sp_dns_sock_fn)(void *arg, int fd, bool readable, bool writable);

/* Called once with up to SP_MAX_ADDRESSES addresses, or none and why. */
typedef void (*sp_dns_done_fn)(void *arg, int naddrs,
                               const struct sockaddr_storage *addrs,
                               const char *why);

/* Make a channel that uses server ("ADDR[:PORT]") or the system's. */
struct sp_dns *sp_dns_new(const char *server, sp_dns_sock_fn sock,
                          void *sock_arg, char *err, size_t errlen);

/* Start resolving host for family (AF_UNSPEC, AF_INET, AF_INET6). */
void sp_dns_lookup(struct sp_dns *dns, const char *host, int family,
                   sp_dns_done_fn done, void *done_arg);

/* Let c-ares read/write a ready socket (fd < 0: only run its timers). */
void sp_dns_process(struct sp_dns *dns, int fd, bool readable, bool writable);

/* Milliseconds until c-ares wants its timers run, at most max_ms. */
int sp_dns_timeout_ms(struct sp_dns *dns, int max_ms);

/* Cancel anything pending and free the channel (done is not called). */
void sp_dns_free(struct sp_dns *dns);

#endif /* SP_RESOLVE_H */
