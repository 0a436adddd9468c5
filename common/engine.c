/*
 * engine.c - the non-blocking probe engine: one epoll loop that runs many
 * probes at once (their state machine is probe.c), resolves hosts with
 * c-ares, keeps one TLS context per trust store, and hands each request's
 * results to its callback. Every probe has its own deadline; nothing
 * blocks. A loop turn touches only what is ready: sockets epoll reports,
 * probes whose timer is due (a min-heap by next timer), batches still
 * resolving and batches finished.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "engine_internal.h"

/* The TLS mode a port spec means: auto resolved by role. */
static enum sp_tls_mode effective_mode(const struct sp_port_spec *spec) {
  if (spec->tls_mode != SP_TLS_AUTO)
    return spec->tls_mode;
  enum sp_role role =
      spec->role == SP_ROLE_DEFAULT ? sp_role_for_port(spec->port) : spec->role;
  return role == SP_ROLE_IMPLICIT ? SP_TLS_IMPLICIT : SP_TLS_STARTTLS;
}

/* The job a probe belongs to (its env is the job's first member). */
static struct job *job_of(struct probe *p) {
  return (struct job *)p->env;
}

/* ---- Timers and finished batches: the loop touches only what is due -- */

/* Swap two heap entries, keeping their indexes right. */
static void heap_swap(struct sp_engine *eng, int i, int j) {
  struct probe *t = eng->timers[i];
  eng->timers[i] = eng->timers[j];
  eng->timers[j] = t;
  eng->timers[i]->timer_index = i;
  eng->timers[j]->timer_index = j;
}

/* Move entry i up or down until the heap order holds again. */
static void heap_fix(struct sp_engine *eng, int i) {
  while (i > 0 &&
         eng->timers[(i - 1) / 2]->timer_at > eng->timers[i]->timer_at) {
    heap_swap(eng, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < eng->ntimers && eng->timers[l]->timer_at < eng->timers[m]->timer_at)
      m = l;
    if (r < eng->ntimers && eng->timers[r]->timer_at < eng->timers[m]->timer_at)
      m = r;
    if (m == i)
      return;
    heap_swap(eng, i, m);
    i = m;
  }
}

/* Take a probe out of the timer heap (no-op when it is not in it). */
static void timer_remove(struct sp_engine *eng, struct probe *p) {
  int i = p->timer_index;
  if (i < 0)
    return;
  p->timer_index = -1;
  eng->ntimers--;
  if (i == eng->ntimers)
    return;
  eng->timers[i] = eng->timers[eng->ntimers];
  eng->timers[i]->timer_index = i;
  heap_fix(eng, i);
}

/* Make room in the heap for n more probes (done before they exist, so
 * that re-arming a probe can never fail). Returns 0, or -1 out of memory. */
static int timers_reserve(struct sp_engine *eng, int n) {
  if (eng->reserved + n <= eng->cap_timers) {
    eng->reserved += n;
    return 0;
  }
  int cap = eng->cap_timers ? eng->cap_timers : 64;
  while (cap < eng->reserved + n)
    cap *= 2;
  struct probe **t = realloc(eng->timers, (size_t)cap * sizeof(*t));
  if (!t)
    return -1;
  eng->timers = t;
  struct probe **d = realloc(eng->due, (size_t)cap * sizeof(*d));
  if (!d)
    return -1;
  eng->due = d;
  eng->cap_timers = cap;
  eng->reserved += n;
  return 0;
}

/* Put a batch whose probes are all done on the finished list, once. */
static void job_check_finished(struct job *b) {
  if (b->finished || !b->resolved || b->env.ndone < b->nprobes)
    return;
  b->finished = true;
  b->next_finished = b->eng->finished;
  b->eng->finished = b;
}

/* After the probe ran (I/O, a timer, its start): file it in the heap at
 * its next timer, or out of it when done. Every change of a probe's state
 * or deadlines happens inside such a run, so the key is always current. */
static void probe_rearm(struct probe *p) {
  struct sp_engine *eng = job_of(p)->eng;
  if (p->state == CS_DONE) {
    timer_remove(eng, p);
    job_check_finished(job_of(p));
    return;
  }
  p->timer_at = sp_probe_next_timer(p);
  if (p->timer_index < 0) {
    p->timer_index = eng->ntimers++;
    eng->timers[p->timer_index] = p;
  }
  heap_fix(eng, p->timer_index);
}

/* Re-file a probe and its partner: a main probe starts and ends its TLS
 * trial, and a trial can end its main probe. */
static void probe_rearm_pair(struct probe *p) {
  probe_rearm(p);
  if (p->partner)
    probe_rearm(p->partner);
}

/* ---- Batches ----------------------------------------------------------- */

/* The effective role of a port. */
static enum sp_role spec_role(const struct sp_port_spec *spec) {
  return spec->role == SP_ROLE_DEFAULT ? sp_role_for_port(spec->port)
                                       : spec->role;
}

/* Whether a port gets the implicit-TLS trial beside its main probe: not
 * on a relay (a TLS hello before the greeting is a pregreet violation),
 * not when TLS is implicit already or off, not when switched off. */
static bool wants_tls_trial(const struct sp_request *req,
                            const struct sp_port_spec *spec) {
  enum sp_tls_mode mode = effective_mode(spec);
  return !req->no_tls_trial && spec_role(spec) != SP_ROLE_RELAY &&
         mode != SP_TLS_IMPLICIT && mode != SP_TLS_NONE;
}

/* Set up one probe of the batch (not connected yet). */
static void probe_init(struct job *b, struct probe *p, enum attempt_kind kind,
                       const struct sp_port_spec *spec, struct sp_result *res) {
  const struct sp_request *req = &b->req;
  p->tag.kind = EV_PROBE;
  p->timer_index = -1;
  p->env = &b->env;
  p->kind = kind;
  p->res = res;
  p->fd = -1;
  p->phase = SP_PHASE_COUNT; /* none timed yet */
  p->state = kind == AK_TLS_TRIAL ? CS_TRIAL_IDLE : CS_WAIT_DNS;
  sp_buf_init(&p->in, SP_MAX_PROBE_BUFFER);
  sp_buf_init(&p->out, SP_MAX_OUTPUT);
  sp_buf_init(&p->transcript, req->trace ? SP_MAX_TRANSCRIPT : 0);
  sp_reply_init(&p->reply);
  sp_strlcpy(res->host, req->host, sizeof(res->host));
  res->port = spec->port;
  res->role = spec_role(spec);
  res->tls_mode = spec->tls_mode;
  res->hostname_check = -1;
  p->mode = kind == AK_TLS_TRIAL ? SP_TLS_IMPLICIT : effective_mode(spec);
  if (b->out->dns_s >= 0 && !b->env.host_is_ip) {
    res->phase_s[SP_PHASE_DNS] = b->out->dns_s;
    res->phase_done[SP_PHASE_DNS] = true;
  }
}

/* Make the probes of a batch once its addresses are known: the main
 * probes (one per port, or per port and address), then an injection test
 * beside each STARTTLS one when asked, then an idle implicit-TLS trial
 * beside each that may need one. */
static void job_spawn(struct job *b) {
  struct sp_request *req = &b->req;
  bool per_addr = req->all_addresses && b->naddrs > 0;
  int per_port = per_addr ? b->naddrs : 1;
  int nmain = req->nports * per_port;
  int ninj = 0, ntrial = 0;
  for (int i = 0; b->naddrs > 0 && i < nmain; i++) {
    const struct sp_port_spec *spec = &req->ports[i / per_port];
    if (req->check_injection && effective_mode(spec) == SP_TLS_STARTTLS)
      ninj++;
    if (wants_tls_trial(req, spec))
      ntrial++;
  }
  int nside = ninj + ntrial;
  b->nprobes = nmain + nside;
  b->probes = calloc((size_t)b->nprobes, sizeof(*b->probes));
  b->out->results = calloc((size_t)nmain, sizeof(struct sp_result));
  b->scratch = nside ? calloc((size_t)nside, sizeof(struct sp_result)) : NULL;
  if (!b->probes || !b->out->results || (nside && !b->scratch) ||
      timers_reserve(b->eng, b->nprobes) != 0) {
    free(b->probes);
    b->probes = NULL;
    b->nprobes = 0;
    job_check_finished(b);
    return;
  }
  b->nscratch = nside;
  b->out->nresults = nmain;
  int side = 0;
  for (int m = 0; m < nmain; m++) {
    const struct sp_port_spec *spec = &req->ports[m / per_port];
    struct probe *p = &b->probes[m];
    probe_init(b, p, AK_NORMAL, spec, &b->out->results[m]);
    p->res->per_address = per_addr;
    if (b->naddrs == 0)
      continue;
    p->addr_cur = per_addr ? m % per_port : 0;
    p->addr_last = per_addr ? p->addr_cur : b->naddrs - 1;
    enum attempt_kind kinds[2] = {AK_INJECTION, AK_TLS_TRIAL};
    bool wanted[2] = {req->check_injection &&
                          effective_mode(spec) == SP_TLS_STARTTLS,
                      wants_tls_trial(req, spec)};
    for (int k = 0; k < 2; k++) {
      if (!wanted[k])
        continue;
      struct probe *q = &b->probes[nmain + side];
      probe_init(b, q, kinds[k], spec, &b->scratch[side]);
      side++;
      q->main_res = p->res;
      q->addr_cur = p->addr_cur;
      q->addr_last = p->addr_last;
      if (kinds[k] == AK_TLS_TRIAL) {
        q->partner = p;
        p->partner = q;
      }
    }
  }
  for (int i = 0; i < b->nprobes; i++) {
    struct probe *p = &b->probes[i];
    if (b->naddrs == 0) {
      sp_probe_decide(p, SP_DNS_ERROR, "%s: %s", req->host, b->dns_why);
      sp_probe_finish(p);
      probe_rearm(p);
      continue;
    }
    if (p->kind == AK_TLS_TRIAL) { /* started by its main probe, if ever */
      probe_rearm(p);
      continue;
    }
    sp_probe_trail(p, "%s %s port %u, role %s, TLS %s",
                   p->kind == AK_INJECTION ? "STARTTLS injection test of"
                                           : "probe",
                   req->host, (unsigned)p->res->port,
                   sp_role_name(p->res->role), sp_tls_mode_name(p->mode));
    sp_probe_connect(p);
    probe_rearm(p);
  }
}

/* Append a side connection's transcript to its main result's, under a
 * separator line. */
static void merge_transcript(struct sp_result *main, struct sp_result *side,
                             const char *sep) {
  size_t seplen = strlen(sep);
  if (side->transcript && main->transcript) {
    size_t n = main->transcript_len + seplen + side->transcript_len;
    char *t = realloc(main->transcript, n + 1);
    if (t) {
      memcpy(t + main->transcript_len, sep, seplen);
      memcpy(t + main->transcript_len + seplen, side->transcript,
             side->transcript_len);
      t[n] = '\0';
      main->transcript = t;
      main->transcript_len = n;
    }
  }
  free(side->transcript);
  side->transcript = NULL;
}

/* Fold the injection tests and TLS trials into their main results (batch
 * complete). */
static void job_merge(struct job *b) {
  for (int i = 0; i < b->nprobes; i++) {
    struct probe *p = &b->probes[i];
    if (p->kind == AK_TLS_TRIAL) {
      merge_transcript(p->main_res, p->res,
                       "--- implicit-TLS trial connection ---\n");
      continue;
    }
    if (p->kind != AK_INJECTION)
      continue;
    struct sp_result *main = p->main_res;
    if (main->injection_vulnerable) {
      sp_code_set_add(&main->findings, SP_STARTTLS_INJECTION);
      enum sp_state st =
          sp_probe_state_for(main, SP_STARTTLS_INJECTION, &b->req);
      if (st > main->state) {
        main->code = SP_STARTTLS_INJECTION;
        main->state = st;
        main->hint[0] = '\0';
        snprintf(main->detail, sizeof(main->detail),
                 "the server answered a command sent before STARTTLS inside "
                 "TLS (CVE-2011-0411 class)");
      }
    }
    merge_transcript(main, p->res,
                     "--- STARTTLS injection test connection ---\n");
  }
}

/* c-ares answered (called from inside sp_dns_process). */
static void job_resolved(void *arg, int naddrs,
                         const struct sockaddr_storage *addrs,
                         const char *why) {
  struct job *b = arg;
  b->out->dns_s = now_s() - b->env.t_submit;
  b->naddrs = naddrs;
  memcpy(b->addrs, addrs, sizeof(*addrs) * (size_t)naddrs);
  sp_strlcpy(b->dns_why, why ? why : "", sizeof(b->dns_why));
  b->resolved = true;
  /* Probes start from the loop, not from inside c-ares. */
}

/* c-ares asks to watch (or forget) one of its sockets. */
static void job_dns_sock(void *arg, int fd, bool readable, bool writable) {
  struct job *b = arg;
  struct dns_sock **pp = &b->dns_socks;
  while (*pp && (*pp)->fd != fd)
    pp = &(*pp)->next;
  struct dns_sock *s = *pp;
  if (!readable && !writable) {
    if (s) {
      epoll_ctl(b->eng->epfd, EPOLL_CTL_DEL, fd, NULL);
      *pp = s->next;
      free(s);
    }
    return;
  }
  uint32_t ev = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
  int op = EPOLL_CTL_MOD;
  if (!s) {
    s = calloc(1, sizeof(*s));
    if (!s)
      return;
    s->tag.kind = EV_DNS;
    s->job = b;
    s->fd = fd;
    s->next = b->dns_socks;
    b->dns_socks = s;
    op = EPOLL_CTL_ADD;
  }
  struct epoll_event e = {.events = ev, .data.ptr = &s->tag};
  epoll_ctl(b->eng->epfd, op, fd, &e);
}

/* Fill addrs from an IP literal host; false when it is not one. */
static bool literal_address(struct job *b) {
  const char *h = b->req.host;
  struct sockaddr_in *s4 = (struct sockaddr_in *)&b->addrs[0];
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&b->addrs[0];
  memset(&b->addrs[0], 0, sizeof(b->addrs[0]));
  if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
  } else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
  } else {
    return false;
  }
  b->env.host_is_ip = true;
  int fam = b->addrs[0].ss_family;
  if ((b->req.family == SP_FAMILY_IPV4 && fam != AF_INET) ||
      (b->req.family == SP_FAMILY_IPV6 && fam != AF_INET6)) {
    b->naddrs = 0;
    sp_strlcpy(b->dns_why, "the address is not of the requested family",
               sizeof(b->dns_why));
  } else {
    b->naddrs = 1;
  }
  return true;
}

/* Start a batch taken from the queue: resolve, or spawn probes. */
static void job_start(struct job *b) {
  b->out->dns_s = -1;
  if (literal_address(b)) {
    b->resolved = true;
    job_spawn(b);
    return;
  }
  char err[SP_MAX_TEXT];
  b->dns = sp_dns_new(b->req.dns_server, job_dns_sock, b, err, sizeof(err));
  if (!b->dns) {
    b->resolved = true;
    b->naddrs = 0;
    sp_strlcpy(b->dns_why, err, sizeof(b->dns_why));
    job_spawn(b);
    return;
  }
  int fam = b->req.family == SP_FAMILY_IPV4   ? AF_INET
            : b->req.family == SP_FAMILY_IPV6 ? AF_INET6
                                              : AF_UNSPEC;
  b->next_resolving = b->eng->resolving;
  b->eng->resolving = b;
  sp_dns_lookup(b->dns, b->req.host, fam, job_resolved, b);
}

/* Drop the resolver channel and its sockets. */
static void job_drop_dns(struct job *b) {
  if (b->dns) {
    sp_dns_free(b->dns);
    b->dns = NULL;
  }
  while (b->dns_socks) {
    struct dns_sock *s = b->dns_socks;
    epoll_ctl(b->eng->epfd, EPOLL_CTL_DEL, s->fd, NULL);
    b->dns_socks = s->next;
    free(s);
  }
}

/* The string fields of a request, which a batch's copy owns. */
#define REQUEST_STRINGS(r)                                                     \
  {                                                                            \
    &(r)->host, &(r)->sni, &(r)->cafile, &(r)->ehlo_name, &(r)->source,        \
        &(r)->dns_server, &(r)->auth_user, &(r)->auth_secret, &(r)->auth_mech, \
        &(r)->mail_from, &(r)->rcpt_to, &(r)->client_cert, &(r)->client_key,   \
        &(r)->provider                                                         \
  }

/* Make the batch's request own copies of its strings; false when memory
 * ran out (every field is then an owned copy or NULL, for job_free). */
static bool own_strings(struct sp_request *r) {
  const char **fields[] = REQUEST_STRINGS(r);
  bool ok = true;
  for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
    if (!*fields[i])
      continue;
    *fields[i] = strdup(*fields[i]);
    ok = ok && *fields[i] != NULL;
  }
  return ok;
}

/* Free the batch request's owned strings (the secret wiped first). */
static void free_strings(struct sp_request *r) {
  if (r->auth_secret)
    OPENSSL_cleanse((char *)r->auth_secret, strlen(r->auth_secret));
  const char **fields[] = REQUEST_STRINGS(r);
  for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
    free((char *)*fields[i]);
    *fields[i] = NULL;
  }
}

/* Load the request's client certificate chain and key once for all its
 * connections; -1 with err naming the file (never the key's bytes). */
static int load_client_identity(struct job *b, char *err, size_t errlen) {
  const struct sp_request *req = &b->req;
  if (!req->client_cert)
    return 0;
  FILE *f = fopen(req->client_cert, "r");
  if (f) {
    b->env.client_cert = PEM_read_X509(f, NULL, NULL, NULL);
    X509 *x;
    while (b->env.client_cert && (x = PEM_read_X509(f, NULL, NULL, NULL))) {
      if (!b->env.client_chain)
        b->env.client_chain = sk_X509_new_null();
      if (!b->env.client_chain || !sk_X509_push(b->env.client_chain, x))
        X509_free(x);
    }
    fclose(f);
  }
  ERR_clear_error(); /* the end of the file reads as an error */
  if (!b->env.client_cert) {
    snprintf(err, errlen, "client_cert: no PEM certificate in %.200s",
             req->client_cert);
    return -1;
  }
  f = fopen(req->client_key, "r");
  if (f) {
    b->env.client_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
  }
  ERR_clear_error();
  if (!b->env.client_key) {
    snprintf(err, errlen,
             "client_key: no PEM private key (unencrypted) in %.200s",
             req->client_key);
    return -1;
  }
  if (X509_check_private_key(b->env.client_cert, b->env.client_key) != 1) {
    ERR_clear_error();
    snprintf(err, errlen, "client_key: does not match client_cert %.200s",
             req->client_cert);
    return -1;
  }
  return 0;
}

/* Free a batch's own memory (not the results handed out). */
static void job_free(struct job *b) {
  job_drop_dns(b);
  for (int i = 0; i < b->nprobes; i++) {
    timer_remove(b->eng, &b->probes[i]);
    sp_probe_close(&b->probes[i]);
    sp_buf_free(&b->probes[i].in);
    sp_buf_free(&b->probes[i].out);
    sp_buf_free(&b->probes[i].transcript);
    sp_reply_free(&b->probes[i].reply);
  }
  b->eng->reserved -= b->nprobes;
  free(b->probes);
  for (int i = 0; i < b->nscratch; i++) {
    free(b->scratch[i].transcript);
    free(b->scratch[i].certs);
  }
  free(b->scratch);
  free_strings(&b->req);
  X509_free(b->env.client_cert);
  sk_X509_pop_free(b->env.client_chain, X509_free);
  EVP_PKEY_free(b->env.client_key);
  if (b->out)
    sp_batch_free(b->out);
  free(b);
}

/* ---- The loop ---------------------------------------------------------- */

/* Move everything submitted into the running set. */
static void start_queued(struct sp_engine *eng) {
  pthread_mutex_lock(&eng->lock);
  struct job *list = eng->queued;
  eng->queued = NULL;
  pthread_mutex_unlock(&eng->lock);
  while (list) {
    struct job *b = list;
    list = b->next;
    b->prev = NULL;
    b->next = eng->active;
    if (eng->active)
      eng->active->prev = b;
    eng->active = b;
    job_start(b);
  }
}

/* Run timers: c-ares and resolution deadlines of the batches still
 * resolving, then the probes whose timer passed (popped from the heap:
 * the probes with nothing due are not looked at). */
static void run_timers(struct sp_engine *eng) {
  double now = now_s();
  struct job **pp = &eng->resolving;
  while (*pp) {
    struct job *b = *pp;
    if (!b->resolved) {
      sp_dns_process(b->dns, -1, false, false);
      if (!b->resolved && now >= b->env.deadline) {
        b->resolved = true;
        b->naddrs = 0;
        b->out->dns_s = now - b->env.t_submit;
        sp_strlcpy(b->dns_why, "resolution timed out", sizeof(b->dns_why));
      }
    }
    if (!b->resolved) {
      pp = &b->next_resolving;
      continue;
    }
    *pp = b->next_resolving;
    job_drop_dns(b);
    job_spawn(b);
  }
  int ndue = 0;
  while (eng->ntimers > 0 && eng->timers[0]->timer_at <= now) {
    struct probe *p = eng->timers[0];
    timer_remove(eng, p);
    eng->due[ndue++] = p;
  }
  for (int i = 0; i < ndue; i++) {
    struct probe *p = eng->due[i];
    sp_probe_timeout(p, now);
    probe_rearm_pair(p);
  }
}

/* Unlink a batch from the active list. */
static void active_unlink(struct sp_engine *eng, struct job *b) {
  if (b->prev)
    b->prev->next = b->next;
  else
    eng->active = b->next;
  if (b->next)
    b->next->prev = b->prev;
  b->next = b->prev = NULL;
}

/* Hand finished batches to their callbacks. */
static void reap(struct sp_engine *eng) {
  while (eng->finished) {
    struct job *b = eng->finished;
    eng->finished = b->next_finished;
    active_unlink(eng, b);
    job_merge(b);
    struct sp_batch *out = b->out;
    if (b->req.provider) /* a preset: checked against its documentation */
      sp_provider_check_batch(b->req.provider,
                              b->req.sni ? b->req.sni : b->req.host, out);
    sp_recommend(out, &out->recommendation);
    b->out = NULL;
    atomic_fetch_sub(&eng->inflight, b->weight);
    sp_done_fn done = b->done;
    void *user = b->user;
    job_free(b);
    done(out, user);
  }
}

/* Milliseconds the loop may sleep: until the earliest probe timer, c-ares
 * timeout or resolution deadline. */
static int loop_timeout_ms(struct sp_engine *eng, int max_ms) {
  double now = now_s();
  double next = now + max_ms / 1000.0;
  int ms = max_ms;
  for (struct job *b = eng->resolving; b; b = b->next_resolving) {
    if (b->resolved)
      return 0; /* its probes start in run_timers */
    int d = sp_dns_timeout_ms(b->dns, ms);
    if (d < ms)
      ms = d;
    if (b->env.deadline < next)
      next = b->env.deadline;
  }
  if (eng->ntimers > 0 && eng->timers[0]->timer_at < next)
    next = eng->timers[0]->timer_at;
  double until = (next - now) * 1000.0;
  int tms = until <= 0 ? 0 : (int)(until + 0.999);
  return tms < ms ? tms : ms;
}

/* One turn of the loop: start, wait, dispatch, timers, reap. */
static void loop_once(struct sp_engine *eng, int max_ms) {
  start_queued(eng);
  struct epoll_event evs[64];
  int n = epoll_wait(eng->epfd, evs, 64, loop_timeout_ms(eng, max_ms));
  for (int i = 0; i < n; i++) {
    struct ev_tag *tag = evs[i].data.ptr;
    if (tag->kind == EV_WAKE) {
      uint64_t v;
      ssize_t r = read(eng->wakefd, &v, sizeof(v));
      (void)r;
    } else if (tag->kind == EV_DNS) {
      struct dns_sock *s = (struct dns_sock *)tag;
      struct job *b = s->job;
      if (b->dns)
        sp_dns_process(b->dns, s->fd,
                       evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP),
                       evs[i].events & EPOLLOUT);
      /* s may be freed now: don't touch it again. */
    } else {
      struct probe *p = (struct probe *)tag;
      sp_probe_step(p, evs[i].events);
      probe_rearm_pair(p);
    }
  }
  run_timers(eng);
  reap(eng);
}

/* True when nothing is queued or running. */
static bool idle(struct sp_engine *eng) {
  pthread_mutex_lock(&eng->lock);
  bool q = eng->queued != NULL;
  pthread_mutex_unlock(&eng->lock);
  return !q && eng->active == NULL;
}

/* ---- Public API -------------------------------------------------------- */

/* The local FQDN for EHLO: the host name, completed from /etc/hosts
 * when it has no dot (no DNS query is made for it). */
static void local_fqdn(char *buf, size_t buflen) {
  char host[SP_MAX_HOST];
  if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
    sp_strlcpy(host, "localhost", sizeof(host));
  host[sizeof(host) - 1] = '\0';
  sp_strlcpy(buf, host, buflen);
  if (strchr(host, '.'))
    return;
  FILE *f = fopen("/etc/hosts", "r");
  if (!f)
    return;
  char line[512];
  while (fgets(line, sizeof(line), f)) {
    char *save = NULL;
    char *tok = strtok_r(line, " \t\r\n", &save); /* address */
    if (!tok || tok[0] == '#')
      continue;
    char names[8][SP_MAX_HOST];
    int nn = 0;
    bool has_host = false;
    while ((tok = strtok_r(NULL, " \t\r\n", &save)) && nn < 8) {
      if (tok[0] == '#')
        break;
      sp_strlcpy(names[nn], tok, SP_MAX_HOST);
      if (strcmp(tok, host) == 0)
        has_host = true;
      nn++;
    }
    for (int i = 0; has_host && i < nn; i++)
      if (strchr(names[i], '.') && strncmp(names[i], host, strlen(host)) == 0) {
        sp_strlcpy(buf, names[i], buflen);
        fclose(f);
        return;
      }
  }
  fclose(f);
}

/* Skip OpenSSL's atexit cleanup in a one-shot process (see smtp_probe.h). */
void sp_oneshot_process(void) {
  OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT, NULL);
}

/* Create an engine. */
struct sp_engine *sp_engine_new(char *err, size_t errlen) {
  struct sp_engine *eng = calloc(1, sizeof(*eng));
  if (!eng) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&eng->lock, NULL);
  eng->epfd = epoll_create1(EPOLL_CLOEXEC);
  eng->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (eng->epfd < 0 || eng->wakefd < 0) {
    snprintf(err, errlen, "engine: %s", strerror(errno));
    sp_engine_free(eng);
    return NULL;
  }
  eng->wake_tag.kind = EV_WAKE;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &eng->wake_tag};
  epoll_ctl(eng->epfd, EPOLL_CTL_ADD, eng->wakefd, &ev);
  local_fqdn(eng->fqdn, sizeof(eng->fqdn));
  return eng;
}

/* Find or make the context for cafile (engine lock held). */
static struct ctx_entry *context_for(struct sp_engine *eng, const char *cafile,
                                     char *err, size_t errlen) {
  for (struct ctx_entry *c = eng->ctxs; c; c = c->next)
    if ((!c->cafile && !cafile) ||
        (c->cafile && cafile && strcmp(c->cafile, cafile) == 0))
      return c;
  struct ctx_entry *c = calloc(1, sizeof(*c));
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->ctx = sp_tls_context_new(cafile, false, err, errlen);
  c->cafile = cafile ? strdup(cafile) : NULL;
  if (!c->ctx || (cafile && !c->cafile)) {
    SSL_CTX_free(c->ctx);
    free(c->cafile);
    free(c);
    return NULL;
  }
  c->next = eng->ctxs;
  eng->ctxs = c;
  return c;
}

/* The legacy (TLS 1.0+) context for a batch, made on first use. */
static SSL_CTX *job_legacy_ctx(struct probe_env *env) {
  struct job *b = (struct job *)env; /* env is the job's first member */
  struct sp_engine *eng = b->eng;
  pthread_mutex_lock(&eng->lock);
  if (!b->ctxe->legacy) {
    char err[SP_MAX_TEXT];
    b->ctxe->legacy =
        sp_tls_context_new(b->ctxe->cafile, true, err, sizeof(err));
  }
  SSL_CTX *ctx = b->ctxe->legacy;
  pthread_mutex_unlock(&eng->lock);
  return ctx;
}

/* Queue a request. */
int sp_engine_submit(struct sp_engine *eng, const struct sp_request *req,
                     sp_done_fn done, void *user, char *err, size_t errlen) {
  if (!done) {
    snprintf(err, errlen, "submit: no completion callback");
    return -1;
  }
  /* the adapters validated whole; the cafile is read (once per file) by
   * context_for, which says so when it cannot be loaded */
  if (sp_request_check_fields(req, err, errlen) != 0)
    return -1;
  struct job *b = calloc(1, sizeof(*b));
  struct sp_batch *out = calloc(1, sizeof(*out));
  if (!b || !out) {
    free(b);
    free(out);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  b->eng = eng;
  b->out = out;
  b->req = *req;
  for (int i = 0; i < b->req.nports; i++) { /* request-wide tls and role */
    struct sp_port_spec *spec = &b->req.ports[i];
    if (spec->tls_mode == SP_TLS_AUTO)
      spec->tls_mode = req->tls_mode;
    if (spec->role == SP_ROLE_DEFAULT)
      spec->role = req->role;
  }
  if (!own_strings(&b->req)) {
    free_strings(&b->req);
    free(b);
    free(out);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (load_client_identity(b, err, errlen) != 0) {
    job_free(b);
    return -1;
  }
  b->env.req = &b->req;
  b->env.addrs = b->addrs;
  b->env.legacy_ctx = job_legacy_ctx;
  b->env.epfd = eng->epfd;
  b->env.fqdn = eng->fqdn;
  b->done = done;
  b->user = user;
  b->weight = req->nports;
  pthread_mutex_lock(&eng->lock);
  b->ctxe = context_for(eng, req->cafile, err, errlen);
  b->env.ctx = b->ctxe ? b->ctxe->ctx : NULL;
  if (!b->env.ctx) {
    pthread_mutex_unlock(&eng->lock);
    job_free(b);
    return -1;
  }
  b->env.t_submit = now_s();
  b->env.deadline = b->env.t_submit + req->timeout_s;
  struct job **tail = &eng->queued;
  while (*tail)
    tail = &(*tail)->next;
  *tail = b;
  pthread_mutex_unlock(&eng->lock);
  atomic_fetch_add(&eng->inflight, b->weight);
  uint64_t one = 1;
  ssize_t w = write(eng->wakefd, &one, sizeof(one));
  (void)w;
  return 0;
}

/* Run the loop in the calling thread until no work is left. */
void sp_engine_run(struct sp_engine *eng) {
  while (!idle(eng))
    loop_once(eng, 1000);
}

/* The loop thread's body. */
static void *engine_thread(void *arg) {
  struct sp_engine *eng = arg;
  while (!atomic_load(&eng->stopping))
    loop_once(eng, 1000);
  return NULL;
}

/* Start the engine's own loop thread. */
int sp_engine_start(struct sp_engine *eng) {
  if (eng->thread_running)
    return 0;
  atomic_store(&eng->stopping, false);
  if (pthread_create(&eng->thread, NULL, engine_thread, eng) != 0)
    return -1;
  eng->thread_running = true;
  return 0;
}

/* End every running probe now (engine stopping). */
static void abort_all(struct sp_engine *eng) {
  start_queued(eng);
  for (struct job *b = eng->resolving; b; b = b->next_resolving) {
    if (!b->resolved) {
      b->resolved = true;
      b->naddrs = 0;
      sp_strlcpy(b->dns_why, "engine stopped", sizeof(b->dns_why));
    }
    job_drop_dns(b);
    job_spawn(b);
  }
  eng->resolving = NULL;
  for (struct job *b = eng->active; b; b = b->next)
    for (int i = 0; i < b->nprobes; i++)
      if (b->probes[i].state != CS_DONE) {
        sp_probe_decide(&b->probes[i], SP_READ_TIMEOUT, "engine stopped");
        sp_probe_finish(&b->probes[i]);
        probe_rearm_pair(&b->probes[i]);
      }
  reap(eng);
}

/* Stop the loop thread; running probes end at once. */
void sp_engine_stop(struct sp_engine *eng) {
  if (!eng->thread_running)
    return;
  atomic_store(&eng->stopping, true);
  uint64_t one = 1;
  ssize_t w = write(eng->wakefd, &one, sizeof(one));
  (void)w;
  pthread_join(eng->thread, NULL);
  eng->thread_running = false;
  abort_all(eng);
}

/* Free the engine. */
void sp_engine_free(struct sp_engine *eng) {
  if (!eng)
    return;
  sp_engine_stop(eng);
  abort_all(eng);
  while (eng->ctxs) {
    struct ctx_entry *c = eng->ctxs;
    eng->ctxs = c->next;
    SSL_CTX_free(c->ctx);
    SSL_CTX_free(c->legacy);
    free(c->cafile);
    free(c);
  }
  free(eng->timers);
  free(eng->due);
  if (eng->epfd >= 0)
    close(eng->epfd);
  if (eng->wakefd >= 0)
    close(eng->wakefd);
  pthread_mutex_destroy(&eng->lock);
  free(eng);
}

/* A caller waiting in sp_probe_wait. */
struct waiter {
  pthread_mutex_t lock;   /* guards batch */
  pthread_cond_t cond;    /* signalled when batch is set */
  struct sp_batch *batch; /* the answer */
};

/* Completion callback of sp_probe_wait. */
static void wake_waiter(struct sp_batch *batch, void *user) {
  struct waiter *w = user;
  pthread_mutex_lock(&w->lock);
  w->batch = batch;
  pthread_cond_signal(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

/* Submit and wait for the batch. */
struct sp_batch *sp_probe_wait(struct sp_engine *eng,
                               const struct sp_request *req, char *err,
                               size_t errlen) {
  struct waiter w;
  pthread_mutex_init(&w.lock, NULL);
  pthread_cond_init(&w.cond, NULL);
  w.batch = NULL;
  if (sp_engine_submit(eng, req, wake_waiter, &w, err, errlen) != 0) {
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    return NULL;
  }
  if (!eng->thread_running) {
    sp_engine_run(eng);
  } else {
    pthread_mutex_lock(&w.lock);
    while (!w.batch)
      pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
  }
  pthread_cond_destroy(&w.cond);
  pthread_mutex_destroy(&w.lock);
  return w.batch;
}

/* Ports being probed right now. */
int sp_engine_inflight(struct sp_engine *eng) {
  return atomic_load(&eng->inflight);
}

/* Free a batch and everything it holds. */
void sp_batch_free(struct sp_batch *batch) {
  if (!batch)
    return;
  for (int i = 0; i < batch->nresults; i++) {
    free(batch->results[i].transcript);
    free(batch->results[i].certs);
  }
  free(batch->results);
  free(batch);
}
