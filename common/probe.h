/*
 * probe.h - one probe's connection state machine (probe.c) and the narrow
 * interface it needs from whoever runs it (struct probe_env: the request,
 * the clock, the addresses, the TLS contexts, the loop). probe.c knows
 * nothing of the engine's jobs and threads; engine.c drives probes
 * through the functions below. Internal to common/.
 */
#ifndef SP_PROBE_H
#define SP_PROBE_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>

#include "probe_internal.h"

/* ---- Types ----------------------------------------------------------- */

#define SP_MAX_OUTPUT 4096 /* bytes queued for sending per probe */

/* What an epoll event's data.ptr points at. */
enum ev_kind {
  EV_PROBE, /* a probe's connection */
  EV_DNS,   /* a c-ares socket */
  EV_WAKE   /* the engine's eventfd */
};

/* First member of everything registered with epoll. */
struct ev_tag {
  enum ev_kind kind; /* what the rest of the struct is */
};

/* Why a probe's connection exists. A main probe (its result is the one
 * reported) is AK_NORMAL, or AK_LEGACY_TLS once it reconnected to
 * identify an old-protocol server; the others are side connections. */
enum attempt_kind {
  AK_NORMAL,     /* the probe of a port, at the normal TLS level */
  AK_LEGACY_TLS, /* the same probe reconnected with TLS 1.0+ at security
                    level 0, only to identify a failing server */
  AK_INJECTION,  /* STARTTLS injection test beside a main probe */
  AK_TLS_TRIAL   /* implicit-TLS trial beside a main probe whose greeting
                    is late (the main connection keeps waiting) */
};

/* The states of one probe's connection. */
enum conn_state {
  CS_WAIT_DNS,     /* waiting for the request's resolution */
  CS_TRIAL_IDLE,   /* a TLS trial not started (its main probe's greeting
                      may come in time) */
  CS_CONNECT,      /* TCP connect in progress */
  CS_TLS_IMPLICIT, /* TLS handshake before any SMTP */
  CS_BANNER,       /* waiting for the 220 greeting */
  CS_EHLO,         /* EHLO sent */
  CS_HELO,         /* HELO sent after EHLO was refused */
  CS_STARTTLS,     /* STARTTLS sent */
  CS_TLS_STARTTLS, /* TLS handshake after STARTTLS */
  CS_EHLO_TLS,     /* EHLO sent inside TLS */
  CS_AUTH,         /* AUTH exchange in progress */
  CS_MAIL,         /* MAIL FROM sent */
  CS_RCPT,         /* RCPT TO sent */
  CS_DATA,         /* DATA sent */
  CS_BODY,         /* test message sent */
  CS_RSET,         /* RSET sent after the trial */
  CS_INJECT_WAIT,  /* injection test: listening for injected replies */
  CS_QUIT,         /* verdict known, QUIT sent */
  CS_DONE,         /* finished */
  CS_COUNT
};

/* What a probe needs from whoever runs it: one per request, shared by
 * the request's probes (the engine embeds it in its job). */
struct probe_env {
  const struct sp_request *req;         /* the request (strings owned) */
  double t_submit;                      /* monotonic submit time */
  double deadline;                      /* t_submit + timeout */
  bool host_is_ip;                      /* host is an IP literal */
  const struct sockaddr_storage *addrs; /* resolved addresses */
  SSL_CTX *ctx;                         /* client context for req->cafile */
  SSL_CTX *(*legacy_ctx)(struct probe_env *env); /* the TLS 1.0+ context,
                                                    made on first use */
  X509 *client_cert;             /* client certificate, or NULL */
  STACK_OF(X509) * client_chain; /* its intermediates, or NULL */
  EVP_PKEY *client_key;          /* its private key, or NULL */
  int epfd;                      /* the loop's epoll instance */
  const char *fqdn;              /* default EHLO name */
  int ndone;                     /* probes of the request finished */
};

/* One probe: one port (and with all_addresses one address). */
struct probe {
  struct ev_tag tag;                 /* EV_PROBE */
  struct probe_env *env;             /* its request, clock and loop */
  struct sp_result *res;             /* where it writes what it finds */
  enum conn_state state;             /* where it is */
  enum sp_tls_mode mode;             /* effective TLS mode (auto resolved) */
  int fd;                            /* the connection, -1 when none */
  SSL *ssl;                          /* TLS session, NULL before TLS */
  struct sp_verify_log vlog;         /* chain errors seen in the handshake */
  struct sp_sniff sniff;             /* first bytes read under TLS */
  uint32_t events;                   /* epoll events registered, 0: none */
  enum sp_phase phase;               /* phase being timed */
  double t_phase;                    /* when that phase began */
  double t_state;                    /* when the state was entered */
  double attempt_deadline;           /* connect deadline for this address */
  double banner_deadline;            /* when to start the TLS trial, 0: never */
  int addr_cur;                      /* address index being tried */
  int addr_last;                     /* last address index this probe may try */
  int last_errno;                    /* last connect error */
  enum attempt_kind kind;            /* why this connection exists */
  struct probe *partner;             /* main: its TLS trial (NULL: none);
                                        trial: its main probe */
  bool decided;                      /* res->code is final */
  char first_tls_error[SP_MAX_TEXT]; /* why the strict handshake failed,
                                        kept across the legacy retry */
  int first_tls_alert;               /* the alert it carried, -1: none */
  struct sp_result *main_res;        /* injection test or trial: the result of
                                        the main probe it reports into */
  const char *auth_mech;             /* mechanism being used */
  int auth_step;                     /* continuation replies answered */
  double inject_deadline;            /* end of listening for injected replies */
  struct sp_buf in;                  /* bytes received, not yet parsed */
  struct sp_buf out;                 /* bytes waiting to be sent */
  struct sp_buf transcript;          /* dialogue and decision trail (trace) */
  struct sp_reply reply;             /* reply being assembled */
  int timer_index; /* place in the engine's timer heap, -1: none */
  double timer_at; /* its key there: sp_probe_next_timer */
};

/* Monotonic time in seconds. */
static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- probe.c: one probe's state machine ------------------------------ */

/* Append a decision-trail line ("* ...") to the probe's transcript. */
void sp_probe_trail(struct probe *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Open a connection to the probe's current address and start walking. */
void sp_probe_connect(struct probe *p);

/* Run the handler of the probe's state for epoll events. */
void sp_probe_step(struct probe *p, uint32_t events);

/* A timer of the probe passed (now >= sp_probe_next_timer). */
void sp_probe_timeout(struct probe *p, double now);

/* The next moment the probe needs attention without I/O. */
double sp_probe_next_timer(const struct probe *p);

/* Settle the diagnosis (first call wins), then QUIT or close. */
void sp_probe_decide(struct probe *p, enum sp_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* End the probe: close, hand its transcript over, count it done. */
void sp_probe_finish(struct probe *p);

/* Close the probe's connection and TLS session. */
void sp_probe_close(struct probe *p);

/* The state a code means for this result (role table, cert thresholds). */
enum sp_state sp_probe_state_for(const struct sp_result *res, enum sp_code code,
                                 const struct sp_request *req);

#endif /* SP_PROBE_H */
