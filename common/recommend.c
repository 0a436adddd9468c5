/*
 * recommend.c - "which port should this app use?", answered from the
 * ports probed together, in the words of the guides:
 *
 *   - 587 with STARTTLS is the default to recommend;
 *   - 465 (implicit TLS) when 587 does not work, or as the alternative;
 *   - 2525 only as a fallback when 587 is blocked from here;
 *   - 25 is server-to-server relay: never recommended to an app.
 *
 * Only ports that were probed count (the default 587,465 never names
 * 2525); a relay-only run gets none. Where no port works, it says what to
 * check first, by the symptom of the worst port.
 */
#include <stdio.h>
#include <string.h>

#include "smtp_probe.h"

/* What one port number did across its results (all addresses). */
struct port_view {
  uint16_t port;         /* the port */
  bool works;            /* every result of it is OK or WARNING */
  enum sp_tls_mode mode; /* the TLS mode it worked with */
  enum sp_code code;     /* the first failing result's code, else ok */
  bool relay;            /* probed with the relay role */
};

/* The ports of a batch, one view each, in the order first probed. */
static int port_views(const struct sp_batch *b, struct port_view *v, int cap) {
  int n = 0;
  for (int i = 0; i < b->nresults; i++) {
    const struct sp_result *r = &b->results[i];
    int k = 0;
    while (k < n && v[k].port != r->port)
      k++;
    if (k == n) {
      if (n == cap)
        continue;
      v[n] = (struct port_view){r->port, true, SP_TLS_NONE, SP_OK,
                                r->role == SP_ROLE_RELAY};
      n++;
    }
    bool ok = r->state == SP_STATE_OK || r->state == SP_STATE_WARNING;
    if (!ok && v[k].works) {
      v[k].works = false;
      v[k].code = r->code;
    }
    if (ok)
      v[k].mode = r->implicit_tls ? SP_TLS_IMPLICIT
                  : r->tls        ? SP_TLS_STARTTLS
                                  : SP_TLS_NONE;
  }
  return n;
}

/* The view of a port number, or NULL when it was not probed. */
static const struct port_view *find(const struct port_view *v, int n,
                                    uint16_t port) {
  for (int i = 0; i < n; i++)
    if (v[i].port == port)
      return &v[i];
  return NULL;
}

/* Whether a code means "no answer from here" (firewall or egress). */
static bool blocked(enum sp_code c) {
  return c == SP_CONNECT_TIMEOUT || c == SP_NETWORK_UNREACHABLE ||
         c == SP_CONNECT_REFUSED;
}

/* What to check first for a failing port, by its symptom. */
static const char *first_check(enum sp_code c) {
  switch (c) {
  case SP_CONNECT_TIMEOUT:
  case SP_NETWORK_UNREACHABLE:
  case SP_BANNER_TIMEOUT:
  case SP_DNS_ERROR:
    return "the firewall or egress from here";
  case SP_TLS_MODE_MISMATCH:
  case SP_TLS_HANDSHAKE_FAILED:
  case SP_STARTTLS_UNAVAILABLE:
    return "the pairing of port and TLS mode";
  case SP_AUTH_FAILED:
  case SP_AUTH_UNAVAILABLE:
  case SP_AUTH_BEFORE_TLS:
    return "the credentials or the AUTH mechanism";
  case SP_REJECTED:
    return "the server's policy (5xx)";
  case SP_DEFERRED:
    return "the server's limits or load (4xx)";
  default:
    return sp_code_hint(c);
  }
}

/* Set the recommendation to port/mode with a sentence. */
static void set(struct sp_recommendation *out, const struct port_view *v,
                const char *fmt, const char *a, const char *b) {
  out->has = true;
  out->port = v->port;
  out->tls_mode = v->mode;
  snprintf(out->text, sizeof(out->text), fmt, a ? a : "", b ? b : "");
}

/* Recommend a port from a batch's results (see smtp_probe.h). */
void sp_recommend(const struct sp_batch *b, struct sp_recommendation *out) {
  memset(out, 0, sizeof(*out));
  struct port_view v[SP_MAX_PORTS];
  int n = port_views(b, v, SP_MAX_PORTS);
  bool all_relay = n > 0;
  for (int i = 0; i < n; i++)
    all_relay = all_relay && v[i].relay;
  if (n == 0 || all_relay)
    return; /* nothing for relay-only runs */
  const struct port_view *p587 = find(v, n, 587), *p465 = find(v, n, 465),
                         *p2525 = find(v, n, 2525), *p25 = find(v, n, 25);
  char also[SP_MAX_TEXT] = "";
  if (p465 && p465->works)
    snprintf(also, sizeof(also), "; 465 implicit TLS also works");
  else if (p2525 && p2525->works)
    snprintf(also, sizeof(also), "; 2525 also works");
  char why25[SP_MAX_TEXT] = "";
  if (p25 && !p25->works && blocked(p25->code))
    snprintf(why25, sizeof(why25),
             "; 25 is blocked from here: expected for apps, it is for "
             "server-to-server relay");
  if (p587 && p587->works) {
    char tail[2 * SP_MAX_TEXT];
    snprintf(tail, sizeof(tail), "%s%s", also, why25);
    set(out, p587, "use 587 %s (works)%s", sp_tls_mode_name(p587->mode), tail);
    return;
  }
  if (p2525 && p2525->works && p587 && blocked(p587->code)) {
    set(out, p2525,
        "587 %s from here, 2525 works: egress blocks 587, use 2525 %s",
        sp_code_name(p587->code), sp_tls_mode_name(p2525->mode));
    return;
  }
  if (p465 && p465->works) {
    char why[SP_MAX_TEXT];
    snprintf(why, sizeof(why), "%s%s%s", p587 ? " (587: " : "",
             p587 ? sp_code_name(p587->code) : "", p587 ? ")" : "");
    set(out, p465, "use 465 implicit TLS (works)%s%s", why, why25);
    return;
  }
  if (p2525 && p2525->works) {
    set(out, p2525, "use 2525 %s (works)%s", sp_tls_mode_name(p2525->mode),
        why25);
    return;
  }
  for (int i = 0; i < n; i++) /* another port the user probed */
    if (v[i].works && !v[i].relay) {
      char port[8];
      snprintf(port, sizeof(port), "%u", (unsigned)v[i].port);
      set(out, &v[i], "use %s %s (works)", port, sp_tls_mode_name(v[i].mode));
      return;
    }
  /* No port works for an app: say what to check first, by the symptom of
   * the first submission port that failed. */
  const struct port_view *worst = p587 ? p587 : p465 ? p465 : &v[0];
  for (int i = 0; !p587 && !p465 && i < n; i++)
    if (!v[i].relay) {
      worst = &v[i];
      break;
    }
  out->has = false;
  snprintf(out->text, sizeof(out->text),
           "no port works for an app: check %s first (%u %s)",
           first_check(worst->code), (unsigned)worst->port,
           sp_code_name(worst->code));
}
