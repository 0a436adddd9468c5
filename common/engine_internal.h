/*
 * engine_internal.h - the engine's own types (engine.c: loop, jobs,
 * threads). Probes are driven through probe.h. Internal to common/.
 */
#ifndef SP_ENGINE_INTERNAL_H
#define SP_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "probe.h"
#include "resolve.h"

struct ctx_entry;

/* A c-ares socket being watched. */
struct dns_sock {
  struct ev_tag tag;     /* EV_DNS */
  struct job *job;       /* whose channel */
  int fd;                /* the socket */
  struct dns_sock *next; /* next in the job's list */
};

/* One submitted request and its probes (the engine's own; what callers
 * get back is the public struct sp_batch of results). */
struct job {
  struct probe_env env;       /* what its probes see (first member) */
  struct sp_engine *eng;      /* owner */
  struct sp_request req;      /* copy; its strings are owned copies */
  struct ctx_entry *ctxe;     /* the cached contexts for req.cafile */
  struct sp_result *scratch;  /* results of injection tests */
  int nscratch;               /* how many */
  struct sp_dns *dns;         /* resolver channel while resolving */
  struct dns_sock *dns_socks; /* its sockets */
  bool resolved;              /* resolution finished (or not needed) */
  char dns_why[128];          /* why resolution failed */
  struct sockaddr_storage addrs[SP_MAX_ADDRESSES]; /* resolved addresses */
  int naddrs;                                      /* how many */
  struct probe *probes;                            /* nprobes probes */
  int nprobes;                                     /* how many */
  struct sp_batch *out;                            /* results handed to done */
  sp_done_fn done;                                 /* completion callback */
  void *user;                                      /* its argument */
  int weight;                 /* what it adds to the in-flight gauge */
  bool finished;              /* every probe done: on the finished list */
  struct job *next;           /* queued or active list link */
  struct job *prev;           /* active list back link */
  struct job *next_resolving; /* resolving list link */
  struct job *next_finished;  /* finished list link */
};

/* One cached client context per trust-anchor file. */
struct ctx_entry {
  char *cafile;           /* NULL for the system store */
  SSL_CTX *ctx;           /* the context */
  SSL_CTX *legacy;        /* TLS 1.0+ variant, made when first needed */
  struct ctx_entry *next; /* list link */
};

/* The engine. */
struct sp_engine {
  int epfd;               /* epoll instance */
  int wakefd;             /* eventfd to wake the loop */
  struct ev_tag wake_tag; /* EV_WAKE */
  pthread_mutex_t lock;   /* guards queued and ctxs */
  struct job *queued;     /* submitted, not started */
  struct job *active;     /* running (loop thread only) */
  struct job *resolving;  /* the active jobs still resolving */
  struct job *finished;   /* the active jobs whose probes are all done */
  struct probe **timers;  /* min-heap of running probes by timer_at */
  int ntimers;            /* probes in the heap */
  int cap_timers;         /* room in timers and due */
  int reserved;           /* probes of spawned jobs (cap_timers >= it) */
  struct probe **due;     /* scratch: probes whose timer passed */
  struct ctx_entry *ctxs; /* cached contexts */
  atomic_int inflight;    /* ports being probed */
  atomic_bool stopping;   /* ask the thread to end */
  bool thread_running;    /* sp_engine_start was called */
  pthread_t thread;       /* the loop thread */
  char fqdn[SP_MAX_HOST]; /* default EHLO name */
};

#endif /* SP_ENGINE_INTERNAL_H */
