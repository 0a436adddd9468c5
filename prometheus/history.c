/*
 * history.c - the ring of recent probes behind the landing page and
 * /logs?id= (see history.h). Memory is bounded by the limit times
 * (HISTORY_LOG_CAP + the fixed fields); everything shown is escaped.
 */
#include "history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Set up a ring of limit entries. */
int history_init(struct history *h, int limit) {
  memset(h, 0, sizeof(*h));
  pthread_mutex_init(&h->lock, NULL);
  h->limit = limit > 0 ? limit : 0;
  if (h->limit == 0)
    return 0;
  h->entries = calloc((size_t)h->limit, sizeof(*h->entries));
  return h->entries ? 0 : -1;
}

/* Free the ring and every log in it. */
void history_free(struct history *h) {
  for (int i = 0; h->entries && i < h->limit; i++) {
    free(h->entries[i].log);
    debug_record_free(h->entries[i].rec);
  }
  free(h->entries);
  h->entries = NULL;
  pthread_mutex_destroy(&h->lock);
}

/* Fill an entry's time, names and per-port verdicts. */
static void fill_entry(struct history_entry *e, const char *module,
                       const char *target, const struct sp_batch *batch,
                       double duration_s) {
  memset(e, 0, sizeof(*e));
  e->when = time(NULL);
  e->duration_s = duration_s;
  sp_sanitize(e->module, sizeof(e->module), module, strlen(module));
  sp_sanitize(e->target, sizeof(e->target), target, strlen(target));
  size_t used = 0;
  int worst = SP_STATE_OK;
  for (int i = 0; i < batch->nresults; i++) {
    const struct sp_result *r = &batch->results[i];
    int n =
        snprintf(e->ports + used, sizeof(e->ports) - used, "%s%u%s%s %s %s",
                 i ? "; " : "", (unsigned)r->port, r->per_address ? "@" : "",
                 r->per_address ? r->address : "", sp_code_name(r->code),
                 sp_state_name(r->state));
    if (n < 0 || (size_t)n >= sizeof(e->ports) - used)
      break;
    used += (size_t)n;
    int rank = r->state == SP_STATE_CRITICAL  ? 3
               : r->state == SP_STATE_WARNING ? 2
               : r->state == SP_STATE_UNKNOWN ? 1
                                              : 0;
    int wrank = worst == SP_STATE_CRITICAL  ? 3
                : worst == SP_STATE_WARNING ? 2
                : worst == SP_STATE_UNKNOWN ? 1
                                            : 0;
    if (rank > wrank)
      worst = r->state;
  }
  e->state = worst;
}

/* Put a filled entry into the ring, giving it the next id; the oldest
 * entry and its log go. */
static void store(struct history *h, struct history_entry *e) {
  pthread_mutex_lock(&h->lock);
  e->id = ++h->last_id;
  struct history_entry *slot = &h->entries[h->next];
  struct history_entry old = *slot;
  *slot = *e;
  h->next = (h->next + 1) % h->limit;
  pthread_mutex_unlock(&h->lock);
  free(old.log); /* outside the lock */
  debug_record_free(old.rec);
}

/* Keep one finished probe (see history.h). */
void history_add(struct history *h, const char *module, const char *target,
                 const struct sp_batch *batch, double duration_s,
                 const char *log, size_t log_len) {
  if (h->limit == 0 || !h->entries)
    return;
  struct history_entry e;
  fill_entry(&e, module, target, batch, duration_s);
  if (log) {
    size_t keep = log_len < HISTORY_LOG_CAP ? log_len : HISTORY_LOG_CAP;
    static const char cut[] = "\n[log truncated]\n";
    e.log = malloc(keep + sizeof(cut));
    if (e.log) {
      memcpy(e.log, log, keep);
      e.log_len = keep;
      if (keep < log_len) {
        memcpy(e.log + keep, cut, sizeof(cut) - 1);
        e.log_len += sizeof(cut) - 1;
      }
      e.log[e.log_len] = '\0';
    }
  }
  store(h, &e);
}

/* Keep one finished probe with its log in parts (see history.h). */
void history_add_probe(struct history *h, const char *module,
                       const char *target, struct sp_batch *batch,
                       double duration_s, char *trail) {
  if (h->limit == 0 || !h->entries) {
    free(trail);
    return;
  }
  struct history_entry e;
  fill_entry(&e, module, target, batch, duration_s);
  e.rec = debug_record_new(trail, batch);
  if (e.rec == NULL)
    free(trail);
  store(h, &e);
}

/* Append text escaped for HTML. */
static void escape(struct sp_buf *out, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&':
      sp_buf_puts(out, "&amp;");
      break;
    case '<':
      sp_buf_puts(out, "&lt;");
      break;
    case '>':
      sp_buf_puts(out, "&gt;");
      break;
    case '"':
      sp_buf_puts(out, "&quot;");
      break;
    default:
      sp_buf_add(out, s, 1);
    }
  }
}

/* The entries newest first, as HTML table rows. */
void history_rows(struct history *h, struct sp_buf *out) {
  pthread_mutex_lock(&h->lock);
  for (int k = 1; h->entries && k <= h->limit; k++) {
    const struct history_entry *e =
        &h->entries[(h->next - k + h->limit) % h->limit];
    if (e->id == 0)
      break;
    char when[32];
    struct tm tm;
    gmtime_r(&e->when, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    sp_buf_printf(out, "<tr class=\"%s\"><td>%s</td><td>",
                  sp_state_name((enum sp_state)e->state), when);
    escape(out, e->module);
    sp_buf_puts(out, "</td><td>");
    escape(out, e->target);
    sp_buf_puts(out, "</td><td>");
    escape(out, e->ports);
    sp_buf_printf(out,
                  "</td><td>%.3fs</td><td><a href=\"logs?id=%llu\">Logs</a>"
                  "</td></tr>\n",
                  e->duration_s, (unsigned long long)e->id);
  }
  pthread_mutex_unlock(&h->lock);
}

/* The stored log of entry id into out (see history.h). */
bool history_log(struct history *h, uint64_t id, struct sp_buf *out) {
  bool found = false;
  pthread_mutex_lock(&h->lock);
  for (int i = 0; h->entries && i < h->limit && !found; i++) {
    const struct history_entry *e = &h->entries[i];
    if (e->id == id && e->id != 0) {
      found = true;
      if (e->log) {
        sp_buf_add(out, e->log, e->log_len);
      } else if (e->rec) { /* rendered now, cut where the kept log was */
        struct sp_buf page;
        sp_buf_init(&page, HISTORY_LOG_CAP);
        debug_record_render(e->rec, &page);
        sp_buf_add(out, sp_buf_str(&page), page.len);
        sp_buf_free(&page);
      }
    }
  }
  pthread_mutex_unlock(&h->lock);
  return found;
}
