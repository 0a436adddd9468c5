/*
 * srv.c - submission service discovery (RFC 6186, RFC 8314 §5.1): look up
 * `_submissions._tcp.DOMAIN` (implicit TLS, preferred) and
 * `_submission._tcp.DOMAIN` (STARTTLS) and turn the best of each into a
 * request. Without DNSSEC the certificate is verified against the user's
 * domain, not the SRV target (RFC 6186 §6, RFC 7817 §3): the request's SNI
 * and verify name are the domain.
 *
 * One short blocking c-ares exchange before the probe (the adapters that
 * use it run once per check); bounded by the caller's timeout.
 */
#include <ares.h>
#include <arpa/nameser.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "probe_internal.h"

/* What one query found, filled by its c-ares callback. */
struct srv_query {
  struct sp_srv_service *svc; /* where the records go */
  bool done;                  /* the answer (or failure) came */
};

/* Monotonic seconds. */
static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* c-ares callback: keep the SRV records, or why there are none. */
static void srv_answer(void *arg, int status, int timeouts, unsigned char *abuf,
                       int alen) {
  (void)timeouts;
  struct srv_query *q = arg;
  struct sp_srv_service *svc = q->svc;
  q->done = true;
  if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
    svc->missing = true;
    return;
  }
  if (status != ARES_SUCCESS) {
    snprintf(svc->error, sizeof(svc->error), "%s", ares_strerror(status));
    return;
  }
  struct ares_srv_reply *reply = NULL;
  if (ares_parse_srv_reply(abuf, alen, &reply) != ARES_SUCCESS) {
    svc->missing = true; /* an answer without SRV records */
    return;
  }
  for (struct ares_srv_reply *r = reply; r; r = r->next) {
    if (strcmp(r->host, "") == 0 || strcmp(r->host, ".") == 0) {
      svc->none = true; /* "." : the service is decidedly not offered */
      continue;
    }
    if (svc->n >= SP_SRV_MAX)
      continue;
    struct sp_srv_record *out = &svc->rec[svc->n++];
    sp_sanitize(out->target, sizeof(out->target), r->host, strlen(r->host));
    out->port = r->port;
    out->priority = r->priority;
    out->weight = r->weight;
  }
  ares_free_data(reply);
  if (svc->n == 0 && !svc->none)
    svc->missing = true;
}

/* The best record of a service: lowest priority, then highest weight (a
 * probe takes one; RFC 2782's weighted choice matters for load, not for
 * whether the service works). NULL when there is none. */
const struct sp_srv_record *sp_srv_best(const struct sp_srv_service *svc) {
  const struct sp_srv_record *best = NULL;
  for (int i = 0; i < svc->n; i++) {
    const struct sp_srv_record *r = &svc->rec[i];
    if (!best || r->priority < best->priority ||
        (r->priority == best->priority && r->weight > best->weight))
      best = r;
  }
  return best;
}

/* Look up both submission services of a domain (see smtp_probe.h). */
int sp_srv_lookup(const char *domain, const char *dns_server, double timeout_s,
                  struct sp_srv_set *out, char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  if (!domain || !sp_host_is_valid(domain)) {
    snprintf(err, errlen, "'%.60s' is not a domain name", domain ? domain : "");
    return -1;
  }
  sp_strlcpy(out->domain, domain, sizeof(out->domain));
  ares_library_init(ARES_LIB_INIT_ALL);
  ares_channel ch;
  struct ares_options opts;
  memset(&opts, 0, sizeof(opts));
  opts.timeout = (int)(timeout_s * 1000 / 2 > 100 ? timeout_s * 1000 / 2 : 100);
  opts.tries = 2;
  if (ares_init_options(&ch, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) !=
      ARES_SUCCESS) {
    snprintf(err, errlen, "cannot start the resolver");
    return -1;
  }
  if (dns_server &&
      ares_set_servers_ports_csv(ch, dns_server) != ARES_SUCCESS) {
    ares_destroy(ch);
    snprintf(err, errlen, "dns_server: '%.60s' is not IP[:PORT]", dns_server);
    return -1;
  }
  char name[2][SP_MAX_HOST + 32];
  snprintf(name[0], sizeof(name[0]), "_submissions._tcp.%s", domain);
  snprintf(name[1], sizeof(name[1]), "_submission._tcp.%s", domain);
  struct srv_query q[2] = {{&out->submissions, false},
                           {&out->submission, false}};
  for (int i = 0; i < 2; i++)
    ares_query(ch, name[i], C_IN, T_SRV, srv_answer, &q[i]);
  double deadline = mono() + timeout_s;
  while (!(q[0].done && q[1].done)) {
    double left = deadline - mono();
    if (left <= 0)
      break;
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
    struct pollfd pfd[ARES_GETSOCK_MAXNUM];
    int n = 0;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
      /* c-ares's own ARES_GETSOCK_WRITABLE shifts an int by up to 31:
       * read the bits unsigned. */
      unsigned ub = (unsigned)bits;
      short ev =
          (short)((((ub >> i) & 1u) ? POLLIN : 0) |
                  (((ub >> (i + ARES_GETSOCK_MAXNUM)) & 1u) ? POLLOUT : 0));
      if (ev) {
        pfd[n].fd = socks[i];
        pfd[n].events = ev;
        pfd[n].revents = 0;
        n++;
      }
    }
    struct timeval tv, max = {(time_t)left, (long)((left - (long)left) * 1e6)};
    struct timeval *t = ares_timeout(ch, &max, &tv);
    int ms = (int)(t->tv_sec * 1000 + t->tv_usec / 1000) + 1;
    int r = poll(pfd, (nfds_t)n, ms);
    if (r <= 0) {
      ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      continue;
    }
    for (int i = 0; i < n; i++)
      ares_process_fd(ch,
                      (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
                          ? pfd[i].fd
                          : ARES_SOCKET_BAD,
                      (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD);
  }
  bool answered[2] = {q[0].done, q[1].done};
  ares_destroy(ch); /* unanswered queries end here (their callbacks run) */
  for (int i = 0; i < 2; i++)
    if (!answered[i]) {
      q[i].svc->missing = false;
      q[i].svc->n = 0;
      snprintf(q[i].svc->error, sizeof(q[i].svc->error),
               "no answer within %.1fs", timeout_s);
    }
  return 0;
}

/* Turn what the lookup found into a request (see smtp_probe.h). */
int sp_srv_request(const struct sp_srv_set *set, struct sp_request *req,
                   char *note, size_t notelen, char *err, size_t errlen) {
  const struct sp_srv_record *imp = sp_srv_best(&set->submissions);
  const struct sp_srv_record *st = sp_srv_best(&set->submission);
  note[0] = '\0';
  for (int i = 0; i < 2; i++) {
    const struct sp_srv_service *svc = i ? &set->submission : &set->submissions;
    if (svc->error[0]) {
      snprintf(err, errlen, "%s._tcp.%s: the lookup failed: %s",
               i ? "_submission" : "_submissions", set->domain, svc->error);
      return -1;
    }
  }
  if (!imp && !st) {
    bool none = set->submissions.none || set->submission.none;
    snprintf(err, errlen,
             none ? "%s publishes no submission service (SRV target \".\" "
                    "for _submissions._tcp and _submission._tcp)"
                  : "%s has no _submissions._tcp or _submission._tcp SRV "
                    "record",
             set->domain);
    return none ? 1 : -1;
  }
  /* Implicit TLS first (RFC 8314 §5.1); both when one host has both. */
  const struct sp_srv_record *first = imp ? imp : st;
  req->host = first->target;
  req->nports = 0;
  if (imp)
    sp_request_add_port(req, imp->port, SP_TLS_IMPLICIT, SP_ROLE_IMPLICIT);
  if (st && (!imp || strcasecmp(st->target, imp->target) == 0))
    sp_request_add_port(req, st->port, SP_TLS_STARTTLS, SP_ROLE_SUBMISSION);
  else if (st)
    snprintf(note, notelen,
             "_submission._tcp.%s names another host (%s port %u): probe it "
             "on its own",
             set->domain, st->target, (unsigned)st->port);
  if (!imp)
    snprintf(note, notelen,
             "%s has no _submissions._tcp record: implicit TLS (RFC 8314) "
             "is not offered by SRV",
             set->domain);
  if (!req->sni) /* verify against the domain the user gave (RFC 6186 §6) */
    req->sni = set->domain;
  return 0;
}
