/*
 * describe.c - human-readable text of a result, shared by every adapter
 * (Nagios long output, the exporter's debug page, collectd messages).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "probe_internal.h"

/* A bounded text writer. */
struct out {
  char *buf;  /* destination */
  size_t len; /* bytes written */
  size_t cap; /* buffer size */
};

/* Append formatted text, truncating at the buffer's end. */
static void put(struct out *o, const char *fmt, ...) {
  if (o->cap == 0 || o->len + 1 >= o->cap)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  o->len += (size_t)n;
  if (o->len >= o->cap)
    o->len = o->cap - 1;
}

/* Format a UTC time as YYYY-MM-DD. */
static void date_text(time_t t, char *buf, size_t buflen) {
  struct tm tm;
  if (t == 0 || !gmtime_r(&t, &tm) ||
      strftime(buf, buflen, "%Y-%m-%d", &tm) == 0)
    snprintf(buf, buflen, "unknown");
}

/* The one-line hint: the specific detail, or what to check first. */
size_t sp_result_hint(const struct sp_result *res, char *buf, size_t buflen) {
  struct out o = {buf, 0, buflen};
  if (buflen)
    buf[0] = '\0';
  if (res->code != SP_OK && res->detail[0])
    put(&o, "%s", res->detail);
  else
    put(&o, "%s", sp_result_check_first(res));
  return o.len;
}

/* Write the long output block of one result. */
size_t sp_result_describe(const struct sp_result *res, int verbose, char *buf,
                          size_t buflen) {
  struct out o = {buf, 0, buflen};
  if (buflen)
    buf[0] = '\0';
  time_t now = time(NULL);
  put(&o, "%u (%s, TLS %s)%s%s: %s %s - %s\n", (unsigned)res->port,
      sp_role_name(res->role), sp_tls_mode_name(res->tls_mode),
      res->address[0] ? " at " : "", res->address, sp_code_name(res->code),
      sp_state_name(res->state), res->detail[0] ? res->detail : "");
  if (res->code != SP_OK)
    put(&o, "  hint: %s\n", sp_result_check_first(res));
  if (res->tls) {
    put(&o, "  TLS: %s %s (%s)\n", res->tls_version, res->tls_cipher,
        res->implicit_tls ? "implicit" : "STARTTLS");
    if (res->ncerts > 0 && res->certs) {
      char leaf[16], earliest[16];
      date_text(res->leaf_not_after, leaf, sizeof(leaf));
      date_text(res->chain_not_after, earliest, sizeof(earliest));
      put(&o, "  certificate: %s, issued by %s, expires %s (%ld days)\n",
          res->certs[0].subject, res->certs[0].issuer, leaf,
          sp_days_left(res->leaf_not_after, now));
      if (res->chain_not_after != res->leaf_not_after)
        put(&o, "  earliest expiry in the chain: %s (%ld days)\n", earliest,
            sp_days_left(res->chain_not_after, now));
    }
    put(&o, "  chain: %s; hostname %s: %s\n",
        res->verified ? "verified" : res->verify_error,
        res->verify_name[0] ? res->verify_name : "-",
        res->hostname_check == 1   ? "verified"
        : res->hostname_check == 0 ? "MISMATCH"
                                   : "not verified");
  }
  char caps[512];
  if (res->caps_plain.seen) {
    sp_caps_format(&res->caps_plain, caps, sizeof(caps));
    put(&o, "  capabilities before TLS: %s\n", caps);
  }
  if (res->caps_tls.seen) {
    sp_caps_format(&res->caps_tls, caps, sizeof(caps));
    put(&o, "  capabilities after TLS: %s\n", caps);
  }
  if (res->client_cert_requested)
    put(&o, "  client certificate: %s\n",
        res->client_cert_sent ? "requested by the server and sent"
                              : "requested by the server, none sent");
  if (res->auth_mech[0])
    put(&o, "  AUTH: %s accepted\n", res->auth_mech);
  if (res->message_id[0])
    put(&o, "  test message accepted: Message-ID <%s>\n", res->message_id);
  if (res->injection_tested)
    put(&o, "  STARTTLS injection test: %s\n",
        res->injection_vulnerable ? "VULNERABLE" : "not vulnerable");
  put(&o, "  phases:");
  for (int ph = 0; ph < SP_PHASE_COUNT; ph++)
    if (res->phase_done[ph])
      put(&o, " %s=%.4fs", sp_phase_name((enum sp_phase)ph), res->phase_s[ph]);
  put(&o, "\n");
  bool others = false;
  for (int c = 0; c < SP_CODE_COUNT; c++) {
    if (c == (int)res->code ||
        !sp_code_set_has(&res->findings, (enum sp_code)c))
      continue;
    put(&o, "%s %s",
        others ? "" : "  also found:", sp_code_name((enum sp_code)c));
    others = true;
  }
  if (others)
    put(&o, "\n");
  if (verbose >= 2) {
    for (int i = 0; res->certs && i < res->ncerts; i++) {
      char d[16];
      date_text(res->certs[i].not_after, d, sizeof(d));
      put(&o,
          "  cert[%d]: subject %s\n           issuer %s\n           "
          "not after %s, SANs %s\n",
          i, res->certs[i].subject, res->certs[i].issuer, d,
          res->certs[i].sans[0] ? res->certs[i].sans : "-");
    }
  }
  return o.len;
}
