/*
 * output.c - Nagios states, perfdata and the plugin's output text.
 */
#include "output.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_MAX ((4u << 20) - 1) /* no output buffer holds more bytes */
#define DESCRIBE_MAX 16384       /* bytes of one result's block */
#define HINT_MAX 512             /* bytes of one result's hint */

/* How text from results is made safe for plugin output: '|' (the
 * perfdata separator) becomes '/', tab, CR and LF become spaces, other
 * bytes outside printable ASCII become '?'. */
#define SAFE (SP_CLEAN_SPACES | SP_CLEAN_NO_PIPE)

/* Severity rank for comparing states the Nagios way. */
static int state_rank(enum sp_state s) {
  switch (s) {
  case SP_STATE_CRITICAL:
    return 3;
  case SP_STATE_WARNING:
    return 2;
  case SP_STATE_UNKNOWN:
    return 1;
  default:
    return 0;
  }
}

/* The worse of two states: CRITICAL > WARNING > UNKNOWN > OK. */
enum sp_state state_worse(enum sp_state a, enum sp_state b) {
  return state_rank(a) >= state_rank(b) ? a : b;
}

/* Evaluate one result into ev. */
void eval_result(const struct check_opts *o, const struct sp_result *res,
                 struct check_eval *ev) {
  enum sp_state thr = SP_STATE_OK;

  ev->state = res->state;
  ev->why[0] = '\0';
  if (sp_code_is_timeout(res->code))
    ev->state = o->timeout_state;
  if (res->code != SP_OK)
    return;
  for (int p = 0; p < SP_PHASE_COUNT; p++) {
    const struct range *fired = NULL;
    enum sp_state st = SP_STATE_OK;
    double v = res->phase_s[p];
    char expl[64];

    if (p != SP_PHASE_TOTAL && !res->phase_done[p])
      continue;
    if (o->have_crit[p] && range_alerts(&o->crit[p], v)) {
      fired = &o->crit[p];
      st = SP_STATE_CRITICAL;
    } else if (o->have_warn[p] && range_alerts(&o->warn[p], v)) {
      fired = &o->warn[p];
      st = SP_STATE_WARNING;
    }
    if (fired == NULL || state_rank(st) <= state_rank(thr))
      continue;
    thr = st;
    range_explain(fired, v, expl, sizeof(expl));
    snprintf(ev->why, sizeof(ev->why), "%s %.3fs %s",
             p == SP_PHASE_TOTAL ? "response time"
                                 : sp_phase_name((enum sp_phase)p),
             v, expl);
  }
  ev->state = state_worse(ev->state, thr);
}

/* The overall state of n evaluated results. */
enum sp_state eval_aggregate(const struct check_eval *ev, int n,
                             bool require_any) {
  enum sp_state worst = SP_STATE_OK;

  if (n <= 0)
    return SP_STATE_UNKNOWN;
  for (int i = 0; i < n; i++) {
    if (require_any && ev[i].state == SP_STATE_OK)
      return SP_STATE_OK;
    worst = state_worse(worst, ev[i].state);
  }
  return worst;
}

/* Write a quoted perfdata label into buf. */
size_t perf_quote_label(const char *label, char *buf, size_t buflen) {
  size_t n = 0;

  if (buflen < 3) {
    if (buflen > 0)
      buf[0] = '\0';
    return 0;
  }
  buf[n++] = '\'';
  for (const char *p = label; *p != '\0'; p++) {
    unsigned char c = (unsigned char)*p;
    /* room for this character (two for a quote), the closing quote, NUL */
    size_t need = (c == '\'') ? 2 : 1;
    if (n + need + 2 > buflen)
      break;
    if (c == '\'') {
      buf[n++] = '\'';
      buf[n++] = '\'';
    } else if (c == '=' || c < 0x20 || c >= 0x7f || c == '|') {
      buf[n++] = '_';
    } else {
      buf[n++] = (char)c;
    }
  }
  buf[n++] = '\'';
  buf[n] = '\0';
  return n;
}

/* Write a number in fixed point with 6 decimals into buf. */
size_t perf_format_number(double v, char *buf, size_t buflen) {
  int n;

  if (buflen == 0)
    return 0;
  if (!isfinite(v))
    n = snprintf(buf, buflen, "U");
  else
    n = snprintf(buf, buflen, "%.6f", v);
  if (n < 0)
    n = 0;
  return (size_t)n < buflen ? (size_t)n : buflen - 1;
}

/* True when results name their address (all_addresses requests). */
static bool names_address(const struct sp_result *res) {
  return res->per_address && res->address[0] != '\0';
}

/* Write the human label of a result: "587", "587@127.0.0.1",
 * "587@[2001:db8::1]". */
static void display_label(const struct sp_result *res, char *buf,
                          size_t buflen) {
  if (!names_address(res))
    snprintf(buf, buflen, "%u", (unsigned)res->port);
  else if (strchr(res->address, ':') != NULL)
    snprintf(buf, buflen, "%u@[%s]", (unsigned)res->port, res->address);
  else
    snprintf(buf, buflen, "%u@%s", (unsigned)res->port, res->address);
}

/* Append one perfdata item: label=value[uom];warn;crit;min (trailing empty
 * fields dropped by the caller's format). */
static void perf_item(struct sp_buf *sb, const char *label, const char *value,
                      const char *rest) {
  char quoted[160];

  perf_quote_label(label, quoted, sizeof(quoted));
  if (sb->len > 0)
    sp_buf_puts(sb, " ");
  sp_buf_printf(sb, "%s=%s%s", quoted, value, rest);
}

/* Append the perfdata of one result: every phase that happened and the
 * certificate days left when a certificate was seen. */
static void perf_result(struct sp_buf *sb, const struct check_opts *o,
                        const struct sp_result *res, time_t now) {
  char base[96];
  char label[160];
  char num[64];
  char rest[160];

  if (names_address(res))
    snprintf(base, sizeof(base), "%u_%s", (unsigned)res->port, res->address);
  else
    snprintf(base, sizeof(base), "%u", (unsigned)res->port);
  for (int p = 0; p < SP_PHASE_COUNT; p++) {
    if (!res->phase_done[p])
      continue;
    snprintf(label, sizeof(label), "%s_%s", base,
             sp_phase_name((enum sp_phase)p));
    perf_format_number(res->phase_s[p], num, sizeof(num));
    snprintf(rest, sizeof(rest), "s;%s;%s;0",
             o->have_warn[p] ? o->warn[p].text : "",
             o->have_crit[p] ? o->crit[p].text : "");
    perf_item(sb, label, num, rest);
  }
  if (res->ncerts > 0 || res->chain_not_after != 0 ||
      res->leaf_not_after != 0) {
    time_t t =
        res->chain_not_after ? res->chain_not_after : res->leaf_not_after;
    char w[16] = "";
    char c[16] = "";
    snprintf(label, sizeof(label), "%s_cert_days", base);
    snprintf(num, sizeof(num), "%ld", sp_days_left(t, now));
    if (o->req.cert_warn_days >= 0)
      snprintf(w, sizeof(w), "%d:", o->req.cert_warn_days);
    if (o->req.cert_crit_days >= 0)
      snprintf(c, sizeof(c), "%d:", o->req.cert_crit_days);
    snprintf(rest, sizeof(rest), ";%s;%s", w, c);
    perf_item(sb, label, num, rest);
  }
}

/* Append the summary part of one result ("587 ok 0.012s",
 * "465 tls_mode_mismatch: hint"). */
static void summary_result(struct sp_buf *sb, const struct sp_result *res,
                           const struct check_eval *ev) {
  char label[96];
  char hint[HINT_MAX];
  size_t hlen;

  display_label(res, label, sizeof(label));
  sp_buf_puts(sb, label);
  if (res->code == SP_OK && ev->why[0] != '\0') {
    sp_buf_puts(sb, " ok, ");
    sp_buf_add_clean(sb, ev->why, strlen(ev->why), SAFE);
    return;
  }
  if (res->code == SP_OK) {
    sp_buf_printf(sb, " ok %.3fs", res->phase_s[SP_PHASE_TOTAL]);
    return;
  }
  sp_buf_printf(sb, " %s", sp_code_name(res->code));
  hlen = sp_result_hint(res, hint, sizeof(hint));
  if (hlen >= sizeof(hint))
    hlen = sizeof(hint) - 1;
  if (hlen > 0) {
    sp_buf_puts(sb, ": ");
    sp_buf_add_clean(sb, hint, strnlen(hint, hlen), SAFE);
  }
}

/* Append text with every line indented by prefix (text made safe). */
static void add_indented(struct sp_buf *sb, const char *prefix,
                         const char *text, size_t len) {
  size_t i = 0;

  while (i < len) {
    const char *nl = memchr(text + i, '\n', len - i);
    size_t end = nl ? (size_t)(nl - text) : len;
    sp_buf_puts(sb, prefix);
    sp_buf_add_clean(sb, text + i, end - i, SAFE);
    sp_buf_puts(sb, "\n");
    i = end + 1;
  }
}

/* Append the long output block of one result. */
static void block_result(struct sp_buf *sb, const struct check_opts *o,
                         const struct sp_result *res,
                         const struct check_eval *ev, char *desc) {
  char label[96];
  size_t dlen;

  display_label(res, label, sizeof(label));
  sp_buf_printf(sb, "%s %s: %s %s", label, sp_role_name(res->role),
                sp_state_name(ev->state), sp_code_name(res->code));
  if (ev->why[0] != '\0') {
    sp_buf_puts(sb, ", ");
    sp_buf_add_clean(sb, ev->why, strlen(ev->why), SAFE);
  }
  sp_buf_puts(sb, "\n");
  dlen = sp_result_describe(res, o->verbose >= 2 ? 2 : 0, desc, DESCRIBE_MAX);
  if (dlen >= DESCRIBE_MAX)
    dlen = DESCRIBE_MAX - 1;
  add_indented(sb, "  ", desc, strnlen(desc, dlen));
  if (o->verbose >= 3 && res->transcript != NULL) {
    sp_buf_puts(sb, "  dialogue:\n");
    add_indented(sb, "    ", res->transcript,
                 strnlen(res->transcript, res->transcript_len));
  }
}

/* Append src to out, cut at the last newline that keeps out within limit
 * bytes, plus a note saying so. */
static void add_capped(struct sp_buf *out, const struct sp_buf *src,
                       size_t limit) {
  static const char note[] =
      "(long output truncated; -vv or -vvv raise the size limit)\n";
  size_t room;
  size_t take;

  if (src->len == 0)
    return;
  if (out->len + src->len <= limit) {
    sp_buf_add(out, src->data, src->len);
    return;
  }
  if (out->len + sizeof(note) - 1 > limit)
    return;
  room = limit - out->len - (sizeof(note) - 1);
  take = room < src->len ? room : src->len;
  while (take > 0 && src->data[take - 1] != '\n')
    take--;
  sp_buf_add(out, src->data, take);
  sp_buf_puts(out, note);
}

/* Order result indexes worst state first, keeping the given order among
 * equals (insertion sort: n is small). */
static void order_by_state(const struct check_eval *ev, int n, int *idx) {
  for (int i = 0; i < n; i++)
    idx[i] = i;
  for (int i = 1; i < n; i++) {
    int cur = idx[i];
    int j = i;
    while (j > 0 &&
           state_rank(ev[idx[j - 1]].state) < state_rank(ev[cur].state)) {
      idx[j] = idx[j - 1];
      j--;
    }
    idx[j] = cur;
  }
}

/* Build the whole plugin output. */
char *output_build(const struct check_opts *o, const struct sp_result *res,
                   int n, const struct sp_recommendation *rec, time_t now,
                   enum sp_state *state) {
  struct check_eval *ev = NULL;
  int *idx = NULL;
  char *desc = NULL;
  struct sp_buf summary;
  struct sp_buf perf;
  struct sp_buf longout;
  struct sp_buf out;
  enum sp_state st;
  char head[32];
  char recommend[64] = "";
  size_t fixed;

  sp_buf_init(&summary, OUT_MAX);
  sp_buf_init(&perf, OUT_MAX);
  sp_buf_init(&longout, OUT_MAX);
  sp_buf_init(&out, OUT_MAX);
  if (n < 0)
    n = 0;
  ev = calloc((size_t)n + 1, sizeof(*ev));
  idx = calloc((size_t)n + 1, sizeof(*idx));
  desc = malloc(DESCRIBE_MAX);
  if (ev == NULL || idx == NULL || desc == NULL)
    goto done;

  for (int i = 0; i < n; i++)
    eval_result(o, &res[i], &ev[i]);
  st = eval_aggregate(ev, n, o->require_any);
  order_by_state(ev, n, idx);

  /* Summary (worst first) and perfdata (in request order). */
  for (int i = 0; i < n; i++) {
    if (i > 0)
      sp_buf_puts(&summary, "; ");
    summary_result(&summary, &res[idx[i]], &ev[idx[i]]);
    if (o->app_verdict[0] && res[idx[i]].code == SP_OK) { /* --app-* */
      sp_buf_puts(&summary, ": ");
      sp_buf_add_clean(&summary, o->app_verdict, strlen(o->app_verdict), SAFE);
    }
    perf_result(&perf, o, &res[i], now);
  }
  if (n == 0)
    sp_buf_puts(&summary, "no probe results");
  if (o->verbose >= 1 && rec && rec->text[0]) {
    sp_buf_puts(&longout, "recommendation: ");
    sp_buf_add_clean(&longout, rec->text, strnlen(rec->text, sizeof(rec->text)),
                     SAFE);
    sp_buf_puts(&longout, "\n");
  }
  if (o->verbose >= 1)
    for (int i = 0; i < n; i++)
      block_result(&longout, o, &res[idx[i]], &ev[idx[i]], desc);
  if (rec && rec->has)
    snprintf(recommend, sizeof(recommend), "; recommend: %u %s",
             (unsigned)rec->port, sp_tls_mode_name(rec->tls_mode));
  else if (rec && rec->text[0])
    snprintf(recommend, sizeof(recommend), "; recommend: none");

  /* First line: the summary gives way to perfdata when over the cap. */
  snprintf(head, sizeof(head), "SMTP %s - ", sp_state_name(st));
  fixed = strlen(head) + strlen(recommend) + (perf.len ? 3 + perf.len : 0) + 1;
  sp_buf_puts(&out, head);
  if (summary.len > 0 && fixed + summary.len > o->output_cap) {
    size_t keep = o->output_cap > fixed + 3 ? o->output_cap - fixed - 3 : 0;
    sp_buf_add(&out, summary.data, keep < summary.len ? keep : summary.len);
    sp_buf_puts(&out, "...");
  } else if (summary.len > 0) {
    sp_buf_add(&out, summary.data, summary.len);
  }
  sp_buf_puts(&out, recommend); /* never cut: it is in fixed */
  if (perf.len > 0) {
    sp_buf_puts(&out, " | ");
    sp_buf_add(&out, perf.data, perf.len);
  }
  sp_buf_puts(&out, "\n");
  add_capped(&out, &longout, o->output_cap);
  *state = st;

done:
  free(ev);
  free(idx);
  free(desc);
  sp_buf_free(&summary);
  sp_buf_free(&perf);
  sp_buf_free(&longout);
  if (out.failed || out.data == NULL) {
    sp_buf_free(&out);
    return NULL;
  }
  return sp_buf_take(&out, NULL);
}
