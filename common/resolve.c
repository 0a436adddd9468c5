/*
 * resolve.c - non-blocking name resolution with c-ares, driven by the
 * engine's event loop through a socket-state callback.
 */
#include <ares.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "resolve.h"

/* One c-ares channel and the caller's hooks. */
struct sp_dns {
  ares_channel channel; /* the c-ares channel */
  sp_dns_sock_fn sock;  /* tells the engine which sockets to watch */
  void *sock_arg;       /* argument for sock */
  sp_dns_done_fn done;  /* called once with the answer */
  void *done_arg;       /* argument for done */
  int family;           /* AF_UNSPEC, AF_INET or AF_INET6 */
};

/* Initialise the c-ares library once per process. */
static void library_init(void) {
  ares_library_init(ARES_LIB_INIT_ALL);
}

/* Forward c-ares socket interest to the engine. */
static void sock_state(void *data, ares_socket_t fd, int readable,
                       int writable) {
  struct sp_dns *dns = data;
  dns->sock(dns->sock_arg, fd, readable != 0, writable != 0);
}

/* Make a channel that uses server ("ADDR[:PORT]") or the system's. */
struct sp_dns *sp_dns_new(const char *server, sp_dns_sock_fn sock,
                          void *sock_arg, char *err, size_t errlen) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, library_init);
  struct sp_dns *dns = calloc(1, sizeof(*dns));
  if (!dns) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  dns->sock = sock;
  dns->sock_arg = sock_arg;
  struct ares_options opts;
  memset(&opts, 0, sizeof(opts));
  opts.sock_state_cb = sock_state;
  opts.sock_state_cb_data = dns;
  opts.timeout = 1000; /* ms per try; the probe deadline bounds the rest */
  opts.tries = 3;
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  int rc = ares_init_options(&dns->channel, &opts, mask);
  if (rc != ARES_SUCCESS) {
    snprintf(err, errlen, "dns: %s", ares_strerror(rc));
    free(dns);
    return NULL;
  }
  if (server) {
    rc = ares_set_servers_ports_csv(dns->channel, server);
    if (rc != ARES_SUCCESS) {
      snprintf(err, errlen, "dns_server: %s: %s", server, ares_strerror(rc));
      ares_destroy(dns->channel);
      free(dns);
      return NULL;
    }
  }
  return dns;
}

/* Hand the answer of ares_getaddrinfo to the caller. */
static void lookup_done(void *arg, int status, int timeouts,
                        struct ares_addrinfo *ai) {
  (void)timeouts;
  struct sp_dns *dns = arg;
  if (!dns->done) { /* cancelled by sp_dns_free */
    if (ai)
      ares_freeaddrinfo(ai);
    return;
  }
  struct sockaddr_storage addrs[SP_MAX_ADDRESSES];
  int n = 0;
  char why[128] = "";
  if (status == ARES_SUCCESS && ai) {
    for (struct ares_addrinfo_node *node = ai->nodes;
         node && n < SP_MAX_ADDRESSES; node = node->ai_next) {
      if (node->ai_family != AF_INET && node->ai_family != AF_INET6)
        continue;
      if (dns->family != AF_UNSPEC && node->ai_family != dns->family)
        continue;
      size_t len = (size_t)node->ai_addrlen;
      if (len > sizeof(addrs[n]))
        continue;
      memset(&addrs[n], 0, sizeof(addrs[n]));
      memcpy(&addrs[n], node->ai_addr, len);
      n++;
    }
    if (n == 0)
      snprintf(why, sizeof(why), "no address of the requested family");
  } else {
    snprintf(why, sizeof(why), "%s", ares_strerror(status));
  }
  if (ai)
    ares_freeaddrinfo(ai);
  dns->done(dns->done_arg, n, addrs, why);
}

/* Start resolving host; done is called once, from sp_dns_process. */
void sp_dns_lookup(struct sp_dns *dns, const char *host, int family,
                   sp_dns_done_fn done, void *done_arg) {
  struct ares_addrinfo_hints hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  dns->family = family;
  dns->done = done;
  dns->done_arg = done_arg;
  ares_getaddrinfo(dns->channel, host, NULL, &hints, lookup_done, dns);
}

/* Let c-ares read/write a ready socket (fd < 0: only run its timers). */
void sp_dns_process(struct sp_dns *dns, int fd, bool readable, bool writable) {
  ares_process_fd(dns->channel, readable ? fd : ARES_SOCKET_BAD,
                  writable ? fd : ARES_SOCKET_BAD);
}

/* Milliseconds until c-ares wants its timers run, at most max_ms. */
int sp_dns_timeout_ms(struct sp_dns *dns, int max_ms) {
  struct timeval maxtv = {max_ms / 1000, (max_ms % 1000) * 1000};
  struct timeval tv;
  struct timeval *t = ares_timeout(dns->channel, &maxtv, &tv);
  long ms = t->tv_sec * 1000 + (t->tv_usec + 999) / 1000;
  return ms < 0 ? 0 : (int)ms;
}

/* Cancel anything pending and free the channel (done is not called). */
void sp_dns_free(struct sp_dns *dns) {
  if (!dns)
    return;
  dns->done = NULL;
  ares_destroy(dns->channel);
  free(dns);
}
