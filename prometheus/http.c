/*
 * http.c - the exporter's HTTP handlers on libmicrohttpd (see http.h).
 *
 * Each connection has its own thread (MHD thread-per-connection), so a
 * /probe handler simply blocks: it waits for a probe slot until its
 * deadline, then in sp_probe_wait until the engine's thread finishes the
 * batch.
 */
#include "http.h"

#include <arpa/inet.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <yaml.h>

#include "debug.h"
#include "exposition.h"
#include "metrics.h"
#include "target.h"
#include "webconfig.h"

/* Largest request body read (POST /-/reload takes none); beyond: 413. */
#define MAX_BODY 65536
/* Largest debug page. */
#define MAX_DEBUG_PAGE (1024 * 1024)
/* Stack of each connection thread (handlers keep little on the stack). */
#define THREAD_STACK (512 * 1024)
/* Most policy deviations reported per probe. */
#define MAX_DEVIATIONS 64
/* Below this many seconds left after waiting for a slot, answer 503. */
#define MIN_PROBE_S 0.05

/* One connection watched for the header deadline. */
struct watched {
  bool used;       /* the slot holds a live connection */
  int fd;          /* its socket (open while used) */
  double since;    /* when it began waiting for a request header */
  bool in_request; /* a whole header arrived; a request is in progress */
};

/* The header-deadline watchdog: libmicrohttpd's own timeout is an idle
 * timeout, which a client trickling one byte at a time never trips, so a
 * thread shuts down connections whose request header is not complete
 * within --web.read-header-timeout. One per process (one HTTP server). */
static struct {
  pthread_mutex_t lock;    /* guards everything below */
  pthread_cond_t wake;     /* signalled to stop the thread */
  struct watched *slots;   /* one per possible connection */
  unsigned nslots;         /* size of slots[] */
  double header_timeout_s; /* the deadline */
  bool stop;               /* the thread should end */
  bool running;            /* the thread was started */
  pthread_t thread;        /* the watchdog thread */
  unsigned long shut;      /* connections shut down for the deadline */
} watch = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* Per-connection state between the handler's calls. */
struct conn_state {
  size_t body;      /* request body bytes seen (and dropped) */
  bool header_seen; /* the header deadline was lifted */
};

/* Mark a connection's request as started (header complete) or ended (the
 * next header's deadline starts now). */
static void watch_request(struct MHD_Connection *conn, bool started) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  if (ci == NULL || ci->socket_context == NULL)
    return;
  struct watched *w = ci->socket_context;
  pthread_mutex_lock(&watch.lock);
  w->in_request = started;
  w->since = exporter_now();
  pthread_mutex_unlock(&watch.lock);
}

/* Queue a response with a malloc'd body (taken over) and a type. */
static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
                               const char *type, char *body, size_t len) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (r == NULL) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  enum MHD_Result rc = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return rc;
}

/* Queue a plain-text response built with printf. */
static enum MHD_Result respond_text(struct MHD_Connection *conn,
                                    unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result respond_text(struct MHD_Connection *conn,
                                    unsigned status, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (n < 0)
    n = 0;
  if ((size_t)n >= sizeof(msg))
    n = sizeof(msg) - 1;
  char *body = malloc((size_t)n + 1);
  if (body == NULL)
    return MHD_NO;
  memcpy(body, msg, (size_t)n + 1);
  return respond(conn, status, "text/plain; charset=utf-8", body, (size_t)n);
}

/* Queue a 405 naming the allowed methods. */
static enum MHD_Result respond_405(struct MHD_Connection *conn,
                                   const char *allow) {
  static const char msg[] = "Method Not Allowed\n";
  struct MHD_Response *r = MHD_create_response_from_buffer(
      sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
  if (r == NULL)
    return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                          "text/plain; charset=utf-8");
  MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
  enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, r);
  MHD_destroy_response(r);
  return rc;
}

/* Render a set and queue it as a 200 exposition (500 when it cannot be
 * rendered). Samples the writer refused are left out and logged: what
 * remains is still a valid exposition. */
static enum MHD_Result respond_set(struct MHD_Connection *conn,
                                   struct expo_set *set) {
  const char *why = expo_error(set);
  if (why != NULL)
    exporter_log(XLOG_ERROR, "metrics writer refused a sample: %s", why);
  size_t len = 0;
  char *text = expo_render(set, &len);
  if (text == NULL)
    return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                        "cannot write metrics: out of memory or too big\n");
  return respond(conn, MHD_HTTP_OK, EXPO_CONTENT_TYPE, text, len);
}

/* Count a /probe answer by status. */
static void count_status(struct exporter *ex, unsigned status) {
  pthread_mutex_lock(&ex->stats.lock);
  if (status == MHD_HTTP_OK)
    ex->stats.requests_200++;
  else if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
    ex->stats.requests_503++;
  else if (status == MHD_HTTP_BAD_REQUEST)
    ex->stats.requests_400++;
  else if (status == MHD_HTTP_FORBIDDEN)
    ex->stats.requests_403++;
  else
    ex->stats.requests_500++;
  pthread_mutex_unlock(&ex->stats.lock);
}

/* Answer a bad /probe request with 400 and a message. */
static enum MHD_Result
bad_request(struct exporter *ex, struct MHD_Connection *conn, const char *msg) {
  char shown[512]; /* the message may quote what the client sent */
  sp_sanitize(shown, sizeof(shown), msg, strlen(msg));
  exporter_log(XLOG_DEBUG, "bad /probe request: %s", shown);
  count_status(ex, MHD_HTTP_BAD_REQUEST);
  return respond_text(conn, MHD_HTTP_BAD_REQUEST, "%s\n", shown);
}

/* Answer a /probe of a target outside allowed_targets with 403. */
static enum MHD_Result forbidden(struct exporter *ex,
                                 struct MHD_Connection *conn, const char *msg) {
  char shown[512]; /* the message may quote what the client sent */
  sp_sanitize(shown, sizeof(shown), msg, strlen(msg));
  exporter_log(XLOG_WARN, "refused /probe: %s", shown);
  count_status(ex, MHD_HTTP_FORBIDDEN);
  return respond_text(conn, MHD_HTTP_FORBIDDEN, "%s\n", shown);
}

/* A GET argument, or NULL when absent or empty. */
static const char *arg(struct MHD_Connection *conn, const char *name) {
  const char *v =
      MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
  return (v != NULL && v[0] != '\0') ? v : NULL;
}

/* Write a one-line summary of a module into the trail. */
static void trail_module(struct sp_buf *trail, const struct module *mod) {
  const struct sp_request *r = &mod->req;
  char dur[32];
  modules_format_duration(lround(r->timeout_s * 1000.0), dur, sizeof(dur));
  sp_buf_printf(trail, "module %s: tls %s, role %s, timeout %s, ports",
                mod->name, sp_tls_mode_name(r->tls_mode), sp_role_name(r->role),
                dur);
  for (int i = 0; i < r->nports; i++)
    sp_buf_printf(trail, " %u", (unsigned)r->ports[i].port);
  sp_buf_puts(trail, r->nports ? "\n" : " (none)\n");
}

/* Run the probe of a checked request and answer it (200, 503 or 500). */
static enum MHD_Result run_probe(struct exporter *ex,
                                 struct MHD_Connection *conn,
                                 const struct module *mod,
                                 const char *target_arg, struct sp_request *req,
                                 double start, double budget, bool debug,
                                 struct sp_buf *trail) {
  double deadline = start + budget;
  if (!exporter_slot_acquire(ex, deadline - MIN_PROBE_S)) {
    count_status(ex, MHD_HTTP_SERVICE_UNAVAILABLE);
    exporter_log(XLOG_WARN,
                 "no probe slot free within %.3fs (limit %d): 503 for %s",
                 budget, ex->stats.max_concurrent, req->host);
    return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                        "no probe slot became free within the scrape "
                        "deadline (%.3fs; --probe.max-concurrent=%d)\n",
                        budget, ex->stats.max_concurrent);
  }
  double waited = exporter_now() - start;
  req->timeout_s = deadline - exporter_now();
  if (req->timeout_s < 0.01) /* a tiny budget still gets a (failing) probe */
    req->timeout_s = 0.01;
  sp_buf_printf(trail, "slot taken after %.3fs; probe timeout %.3fs\n", waited,
                req->timeout_s);
  char err[256];
  struct sp_batch *batch = sp_probe_wait(ex->engine, req, err, sizeof(err));
  exporter_slot_release(ex);
  if (batch == NULL) {
    count_status(ex, MHD_HTTP_INTERNAL_SERVER_ERROR);
    exporter_log(XLOG_ERROR, "probe of %s did not run: %s", req->host, err);
    return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                        "probe did not run: %s\n", err);
  }
  /* on the heap (21 KiB), as every big buffer of a /probe: the handler's
   * stack stays within the top pages of the connection thread's stack,
   * which glibc keeps mapped when it caches a stack; deeper pages are
   * released (madvise, with a TLB shootdown) when the thread ends and
   * faulted in again by the next connection's thread */
  struct sp_deviation *devs = NULL;
  int ndevs = 0;
  if (mod->policy != NULL) { /* may turn results into policy_violation */
    devs = malloc(MAX_DEVIATIONS * sizeof(*devs));
    if (devs == NULL) {
      sp_batch_free(batch);
      return MHD_NO;
    }
    ndevs = sp_policy_check(mod->policy, batch, devs, MAX_DEVIATIONS);
    sp_buf_printf(trail, "policy %s: %d deviation(s)\n", mod->policy_file,
                  ndevs);
    for (int i = 0; i < ndevs; i++)
      sp_buf_printf(trail, "  port %u %s: %s\n", (unsigned)devs[i].port,
                    devs[i].rule, devs[i].detail);
    sp_recommend(batch, &batch->recommendation); /* from the final codes */
  }
  if (batch->recommendation.text[0])
    sp_buf_printf(trail, "recommend: %s\n", batch->recommendation.text);
  struct expo_set *set = expo_new();
  if (set == NULL) {
    free(devs);
    sp_batch_free(batch);
    return MHD_NO;
  }
  metrics_probe(set, batch);
  if (mod->policy != NULL)
    metrics_policy(set, devs, ndevs);
  free(devs);
  for (int i = 0; i < batch->nresults; i++) {
    const struct sp_result *res = &batch->results[i];
    stats_count_probe(&ex->stats, mod->name, res->code);
    sp_buf_printf(trail, "port %u%s%s: %s, state %s, success %d (%.3fs)\n",
                  (unsigned)res->port, res->address[0] ? " via " : "",
                  res->address, sp_code_name(res->code),
                  sp_state_name(res->state), sp_result_success(res) ? 1 : 0,
                  res->phase_s[SP_PHASE_TOTAL]);
    exporter_log(XLOG_DEBUG, "probe %s port %u module %s: %s", res->host,
                 (unsigned)res->port, mod->name, sp_code_name(res->code));
  }
  count_status(ex, MHD_HTTP_OK);
  double duration_s = exporter_now() - start; /* as the history shows it */
  enum MHD_Result rc;
  if (debug) {
    size_t len = 0;
    char *metrics = expo_render(set, &len);
    struct sp_buf page;
    sp_buf_init(&page, MAX_DEBUG_PAGE - 1); /* MAX_DEBUG_PAGE with NUL */
    debug_page(&page, sp_buf_str(trail), batch, metrics);
    free(metrics);
    if (page.failed) { /* room for the marker past the cap */
      page.failed = false;
      page.limit += 64;
      sp_buf_puts(&page, "\n[debug page truncated]\n");
    }
    char *body = sp_buf_take(&page, &len);
    rc = respond(conn, MHD_HTTP_OK, "text/plain; charset=utf-8", body, len);
  } else {
    rc = respond_set(conn, set);
  }
  expo_free(set);
  /* the landing page's recent probes: the trail and the dialogue are kept
   * as they are (taken, not copied) and the log is rendered only when
   * /logs?id= asks for it */
  if (ex->history.limit > 0)
    history_add_probe(&ex->history, mod->name, target_arg, batch, duration_s,
                      sp_buf_take(trail, NULL));
  sp_batch_free(batch);
  return rc;
}

/* GET /probe?target=...&module=...[&debug=true]. */
static enum MHD_Result handle_probe(struct exporter *ex,
                                    struct MHD_Connection *conn) {
  double start = exporter_now();
  const char *target_arg = arg(conn, "target");
  const char *module_arg = arg(conn, "module");
  const char *debug_arg = arg(conn, "debug");
  bool debug = false;
  if (debug_arg != NULL) {
    if (strcmp(debug_arg, "true") == 0 || strcmp(debug_arg, "1") == 0)
      debug = true;
    else if (strcmp(debug_arg, "false") != 0 && strcmp(debug_arg, "0") != 0)
      return bad_request(ex, conn, "debug must be true or false");
  }
  if (target_arg == NULL)
    return bad_request(ex, conn, "target parameter is missing");
  if (module_arg == NULL)
    return bad_request(ex, conn, "module parameter is missing");
  char err[512];
  struct target target;
  if (target_parse(target_arg, &target, err, sizeof(err)) < 0)
    return bad_request(ex, conn, err);

  struct module_set *modules = exporter_modules_get(ex);
  const struct module *mod = modules ? modules_find(modules, module_arg) : NULL;
  if (mod == NULL) {
    exporter_modules_put(ex, modules);
    char msg[160];
    snprintf(msg, sizeof(msg), "unknown module \"%.64s\"", module_arg);
    return bad_request(ex, conn, msg);
  }
  struct sp_buf trail;
  sp_buf_init(&trail, 64 * 1024 - 1);
  sp_buf_printf(&trail, "target %s: host %s, port %s\n", target_arg,
                target.host,
                target.port ? "given" : "from the module or its policy");
  trail_module(&trail, mod);
  char why[256];
  const char *header = MHD_lookup_connection_value(
      conn, MHD_HEADER_KIND, "X-Prometheus-Scrape-Timeout-Seconds");
  double budget = target_budget(mod->req.timeout_s, header,
                                ex->timeout_offset_s, why, sizeof(why));
  sp_buf_printf(&trail, "%s\n", why);

  struct sp_request req;
  enum MHD_Result rc;
  /* the dialogue is kept for the debug page and the recent probes */
  bool trace = debug || ex->history.limit > 0;
  if (target_request(mod, &target, budget, trace, &req, err, sizeof(err)) < 0)
    rc = bad_request(ex, conn, err);
  else if (!allow_request(&modules->allow, &req, err, sizeof(err)))
    rc = forbidden(ex, conn, err);
  else {
    /* resolved names too must stay inside allowed_targets.networks; the
     * modules (and their allowlist) are held until the probe is over */
    req.allow_address = allow_address;
    req.allow_ctx = &modules->allow;
    rc = run_probe(ex, conn, mod, target_arg, &req, start, budget, debug,
                   &trail);
  }
  sp_buf_free(&trail);
  exporter_modules_put(ex, modules);
  return rc;
}

/* GET /metrics: the exporter's own metrics. */
static enum MHD_Result handle_metrics(struct exporter *ex,
                                      struct MHD_Connection *conn) {
  struct expo_set *set = expo_new();
  if (set == NULL)
    return MHD_NO;
  struct build_versions v = {SP_VERSION, MHD_get_version(),
                             yaml_get_version_string()};
  metrics_self(set, &ex->stats, &v, sp_engine_inflight(ex->engine));
  metrics_process(set);
  expo_family(set, "smtp_exporter_http_header_timeouts_total", EXPO_COUNTER,
              "Connections closed because their request header did not "
              "arrive within --web.read-header-timeout.");
  expo_add(set, "smtp_exporter_http_header_timeouts_total",
           (double)http_header_timeouts(), NULL);
  enum MHD_Result rc = respond_set(conn, set);
  expo_free(set);
  return rc;
}

/* Append text with &, <, >, " escaped for HTML. */
static void html_escape(struct sp_buf *sb, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&':
      sp_buf_puts(sb, "&amp;");
      break;
    case '<':
      sp_buf_puts(sb, "&lt;");
      break;
    case '>':
      sp_buf_puts(sb, "&gt;");
      break;
    case '"':
      sp_buf_puts(sb, "&quot;");
      break;
    default:
      sp_buf_add(sb, s, 1);
    }
  }
}

/* GET /: a small landing page with links and the loaded modules. */
static enum MHD_Result handle_landing(struct exporter *ex,
                                      struct MHD_Connection *conn) {
  struct sp_buf sb;
  sp_buf_init(&sb, 256 * 1024 - 1);
  sp_buf_puts(&sb,
              "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
              "<title>SMTP Exporter</title></head><body>\n"
              "<h1>SMTP Exporter</h1>\n<p>smtp-probe " SP_VERSION
              ": probes mail ports (25, 465, 587, 2525) and answers with a "
              "diagnosis code and per-phase timings.</p>\n<ul>\n"
              "<li><a href=\"metrics\">Metrics</a> (the exporter's own)</li>\n"
              "<li><a href=\"-/healthy\">Health</a></li>\n");
  struct module_set *modules = exporter_modules_get(ex);
  if (modules != NULL && modules->nmodules > 0) {
    sp_buf_puts(&sb, "<li><a href=\"probe?target=127.0.0.1&amp;module=");
    html_escape(&sb, modules->modules[0].name);
    sp_buf_puts(&sb, "&amp;debug=true\">Debug probe of 127.0.0.1 with module ");
    html_escape(&sb, modules->modules[0].name);
    sp_buf_puts(&sb, "</a></li>\n");
  }
  sp_buf_puts(&sb, "</ul>\n<h2>Modules</h2>\n<p>From ");
  html_escape(&sb, ex->config_file);
  sp_buf_puts(&sb, "</p>\n<table border=\"1\"><tr><th>module</th><th>ports</th>"
                   "<th>tls</th><th>role</th><th>timeout</th></tr>\n");
  for (int i = 0; modules != NULL && i < modules->nmodules; i++) {
    const struct sp_request *m = &modules->modules[i].req;
    char dur[32];
    modules_format_duration(lround(m->timeout_s * 1000.0), dur, sizeof(dur));
    sp_buf_puts(&sb, "<tr><td>");
    html_escape(&sb, modules->modules[i].name);
    sp_buf_puts(&sb, "</td><td>");
    /* what the module will probe: its ports, else its policy's, else the
     * target's port (target_request) */
    struct sp_request shown = *m;
    if (shown.nports == 0 && modules->modules[i].policy != NULL)
      sp_policy_add_ports(modules->modules[i].policy, &shown);
    for (int p = 0; p < shown.nports; p++)
      sp_buf_printf(&sb, "%s%u", p ? ", " : "", (unsigned)shown.ports[p].port);
    if (shown.nports == 0)
      sp_buf_puts(&sb, "the target's port (HOST:PORT)");
    else if (m->nports == 0)
      sp_buf_puts(&sb, " (from its policy)");
    sp_buf_printf(&sb, "</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
                  sp_tls_mode_name(m->tls_mode), sp_role_name(m->role), dur);
  }
  exporter_modules_put(ex, modules);
  sp_buf_printf(&sb,
                "</table>\n<h2>Recent probes</h2>\n<p>The last %d, newest "
                "first (--history.limit).</p>\n<table border=\"1\" "
                "id=\"history\"><tr><th>time (UTC)</th><th>module</th>"
                "<th>target</th><th>result per port</th><th>duration</th>"
                "<th>log</th></tr>\n",
                ex->history.limit);
  history_rows(&ex->history, &sb);
  sp_buf_puts(&sb,
              "</table>\n<p>Probe with <code>/probe?target=HOST[:PORT]&amp;"
              "module=NAME</code>; add <code>&amp;debug=true</code> for the "
              "dialogue.</p>\n</body></html>\n");
  size_t len;
  char *body = sp_buf_take(&sb, &len);
  return respond(conn, MHD_HTTP_OK, "text/html; charset=utf-8", body, len);
}

/* GET /logs?id=N: the stored log of a recent probe, without probing. */
static enum MHD_Result handle_logs(struct exporter *ex,
                                   struct MHD_Connection *conn) {
  const char *id_arg = arg(conn, "id");
  char *end = NULL;
  unsigned long long id = id_arg ? strtoull(id_arg, &end, 10) : 0;
  if (id_arg == NULL || *end != '\0' || id == 0)
    return bad_request(ex, conn, "id must be the number of a recent probe");
  struct sp_buf sb;
  sp_buf_init(&sb, HISTORY_LOG_CAP + 64);
  if (!history_log(&ex->history, (uint64_t)id, &sb)) {
    sp_buf_free(&sb);
    return respond_text(conn, MHD_HTTP_NOT_FOUND,
                        "no recent probe %llu (the landing page lists the "
                        "last %d)\n",
                        id, ex->history.limit);
  }
  size_t len;
  char *body = sp_buf_take(&sb, &len);
  return respond(conn, MHD_HTTP_OK, "text/plain; charset=utf-8", body, len);
}

/* POST /-/reload: reload the configuration, keeping the old on error. */
static enum MHD_Result handle_reload(struct exporter *ex,
                                     struct MHD_Connection *conn) {
  char err[1024];
  if (exporter_reload(ex, err, sizeof(err)) < 0)
    return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                        "failed to reload config: %s\n", err);
  return respond_text(conn, MHD_HTTP_OK, "OK\n");
}

/* Check basic auth when the web config has users; true when the request
 * may go on, else a 401 is queued (rc set). */
static bool authorized(struct exporter *ex, struct MHD_Connection *conn,
                       enum MHD_Result *rc) {
  if (ex->web == NULL || ex->web->nusers == 0)
    return true;
  char *password = NULL;
  char *user = MHD_basic_auth_get_username_password(conn, &password);
  bool ok = user != NULL && password != NULL &&
            webconfig_check_user(ex->web, user, password);
  if (password != NULL) {
    explicit_bzero(password, strlen(password));
    MHD_free(password);
  }
  if (user != NULL)
    MHD_free(user);
  if (ok)
    return true;
  pthread_mutex_lock(&ex->stats.lock);
  ex->stats.unauthorized++;
  pthread_mutex_unlock(&ex->stats.lock);
  static const char msg[] = "Unauthorized\n";
  struct MHD_Response *r = MHD_create_response_from_buffer(
      sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
  if (r == NULL) {
    *rc = MHD_NO;
    return false;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                          "text/plain; charset=utf-8");
  *rc = MHD_queue_basic_auth_fail_response(conn, "smtp_exporter", r);
  MHD_destroy_response(r);
  return false;
}

/* True for GET and HEAD. */
static bool is_get(const char *method) {
  return strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
         strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}

/* The request handler: routes by path and method. */
static enum MHD_Result handler(void *cls, struct MHD_Connection *conn,
                               const char *url, const char *method,
                               const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls) {
  struct exporter *ex = cls;
  (void)version;
  (void)upload_data;
  if (*con_cls == NULL) { /* first call: headers only */
    struct conn_state *cs = calloc(1, sizeof(*cs));
    if (cs == NULL)
      return MHD_NO;
    *con_cls = cs;
    return MHD_YES;
  }
  struct conn_state *cs = *con_cls;
  if (!cs->header_seen) { /* the header is complete: stop its deadline */
    cs->header_seen = true;
    watch_request(conn, true);
  }
  if (*upload_data_size != 0) { /* a body: drop it, up to a cap */
    cs->body += *upload_data_size;
    *upload_data_size = 0;
    if (cs->body > MAX_BODY)
      return respond_text(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                          "request body too large\n");
    return MHD_YES;
  }
  exporter_log(XLOG_DEBUG, "%s %s", method, url);
  enum MHD_Result denied;
  if (!authorized(ex, conn, &denied))
    return denied;
  if (strcmp(url, "/-/reload") == 0) {
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0 ||
        strcmp(method, MHD_HTTP_METHOD_PUT) == 0)
      return handle_reload(ex, conn);
    return respond_405(conn, "POST, PUT");
  }
  bool known = strcmp(url, "/probe") == 0 || strcmp(url, "/metrics") == 0 ||
               strcmp(url, "/") == 0 || strcmp(url, "/-/healthy") == 0 ||
               strcmp(url, "/-/ready") == 0 || strcmp(url, "/logs") == 0;
  if (!known)
    return respond_text(conn, MHD_HTTP_NOT_FOUND, "404 page not found\n");
  if (!is_get(method))
    return respond_405(conn, "GET, HEAD");
  if (strcmp(url, "/probe") == 0) {
    enum MHD_Result rc = handle_probe(ex, conn);
    /* restart the idle timer: the probe may have outlasted it (setting it
     * from 0 to a value resets the timer) */
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                              ex->idle_timeout_s);
    return rc;
  }
  if (strcmp(url, "/metrics") == 0)
    return handle_metrics(ex, conn);
  if (strcmp(url, "/logs") == 0)
    return handle_logs(ex, conn);
  if (strcmp(url, "/-/healthy") == 0)
    return respond_text(conn, MHD_HTTP_OK, "Healthy\n");
  if (strcmp(url, "/-/ready") == 0)
    return respond_text(conn, MHD_HTTP_OK, "Ready\n");
  return handle_landing(ex, conn);
}

/* Free the per-connection state when a request ends. */
static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)toe;
  if (*con_cls != NULL)
    watch_request(conn, false);
  free(*con_cls);
  *con_cls = NULL;
}

/* Track connections opening and closing for the header deadline; the
 * socket is still open when CLOSED is notified. */
static void notify_connection(void *cls, struct MHD_Connection *conn,
                              void **socket_context,
                              enum MHD_ConnectionNotificationCode toe) {
  (void)cls;
  pthread_mutex_lock(&watch.lock);
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    *socket_context = NULL;
    for (unsigned i = 0; ci != NULL && i < watch.nslots; i++) {
      if (!watch.slots[i].used) {
        watch.slots[i] =
            (struct watched){true, ci->connect_fd, exporter_now(), false};
        *socket_context = &watch.slots[i];
        break;
      }
    }
  } else if (*socket_context != NULL) {
    ((struct watched *)*socket_context)->used = false;
    *socket_context = NULL;
  }
  pthread_mutex_unlock(&watch.lock);
}

/* The watchdog: twice a second, shut down connections past the header
 * deadline (libmicrohttpd then closes them as if the client had). */
static void *watchdog(void *arg) {
  (void)arg;
  pthread_mutex_lock(&watch.lock);
  while (!watch.stop) {
    double now = exporter_now();
    for (unsigned i = 0; i < watch.nslots; i++) {
      struct watched *w = &watch.slots[i];
      if (w->used && !w->in_request &&
          now - w->since > watch.header_timeout_s) {
        shutdown(w->fd, SHUT_RDWR);
        w->since = now + 1e9; /* once */
        watch.shut++;
      }
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 500 * 1000 * 1000;
    if (ts.tv_nsec >= 1000 * 1000 * 1000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000 * 1000 * 1000;
    }
    pthread_cond_timedwait(&watch.wake, &watch.lock, &ts);
  }
  pthread_mutex_unlock(&watch.lock);
  return NULL;
}

/* Start the header-deadline watchdog for up to n connections. */
static int watch_start(unsigned n, double header_timeout_s) {
  watch.slots = calloc(n, sizeof(*watch.slots));
  if (watch.slots == NULL)
    return -1;
  watch.nslots = n;
  watch.header_timeout_s = header_timeout_s;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&watch.wake, &attr);
  pthread_condattr_destroy(&attr);
  if (pthread_create(&watch.thread, NULL, watchdog, NULL) != 0)
    return -1;
  watch.running = true;
  return 0;
}

/* Stop the watchdog (after the daemon: no connection is left). */
static void watch_stop(void) {
  if (!watch.running)
    return;
  pthread_mutex_lock(&watch.lock);
  watch.stop = true;
  pthread_cond_signal(&watch.wake);
  pthread_mutex_unlock(&watch.lock);
  pthread_join(watch.thread, NULL);
  watch.running = false;
  free(watch.slots);
  watch.slots = NULL;
  watch.nslots = 0;
}

/* Connections shut down for missing the header deadline (see http.h). */
unsigned long http_header_timeouts(void) {
  pthread_mutex_lock(&watch.lock);
  unsigned long n = watch.shut;
  pthread_mutex_unlock(&watch.lock);
  return n;
}

/* Route libmicrohttpd's own error messages into our log. */
static void mhd_logger(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  /* what clients do (give up, go silent, crowd the limits) is theirs to
   * repeat as often as they like: log it at debug so it cannot flood */
  static const char *const client_noise[] = {
      "closed by remote side", "incomplete request",
      "connection limit",      "timed out",
      "Connection reset",      "Failed to receive"};
  enum log_level level = XLOG_WARN;
  for (size_t i = 0; i < sizeof(client_noise) / sizeof(client_noise[0]); i++)
    if (strstr(msg, client_noise[i]) != NULL)
      level = XLOG_DEBUG;
  exporter_log(level, "libmicrohttpd: %s", msg);
}

/* Start serving (see http.h). */
struct MHD_Daemon *http_start(struct exporter *ex,
                              const struct http_options *opts, char *err,
                              size_t errlen) {
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION |
                   MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  uint16_t port;
  if (opts->addr->sa_family == AF_INET6) {
    flags |= MHD_USE_IPv6;
    port = ntohs(((const struct sockaddr_in6 *)opts->addr)->sin6_port);
  } else {
    port = ntohs(((const struct sockaddr_in *)opts->addr)->sin_port);
  }
  struct MHD_OptionItem tls[] = {
      {MHD_OPTION_HTTPS_MEM_CERT, 0, NULL},
      {MHD_OPTION_HTTPS_MEM_KEY, 0, NULL},
      /* TLS 1.2 and 1.3 only, as Prometheus' min_version default */
      {MHD_OPTION_HTTPS_PRIORITIES, 0,
       (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
      {MHD_OPTION_END, 0, NULL}};
  if (opts->web != NULL && opts->web->tls) {
    if (!http_tls_supported()) {
      snprintf(err, errlen,
               "this libmicrohttpd has no HTTPS support (tls_server_config)");
      return NULL;
    }
    flags |= MHD_USE_TLS;
    tls[0].ptr_value = opts->web->cert_pem;
    tls[1].ptr_value = opts->web->key_pem;
  } else {
    tls[0].option = MHD_OPTION_END;
  }
  /* connections beyond the limit are closed at accept, before STARTED */
  if (watch_start(opts->max_connections + 16, opts->header_timeout_s) < 0) {
    snprintf(err, errlen, "cannot start the header-deadline watchdog");
    return NULL;
  }
  struct MHD_Daemon *d = MHD_start_daemon(
      flags, port, NULL, NULL, handler, ex, MHD_OPTION_EXTERNAL_LOGGER,
      mhd_logger, NULL, MHD_OPTION_SOCK_ADDR, opts->addr,
      MHD_OPTION_CONNECTION_LIMIT, opts->max_connections,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, opts->per_ip_limit,
      MHD_OPTION_CONNECTION_TIMEOUT, opts->idle_timeout_s,
      MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK,
      MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
      MHD_OPTION_NOTIFY_CONNECTION, notify_connection, NULL, MHD_OPTION_ARRAY,
      tls, MHD_OPTION_END);
  if (d == NULL)
    watch_stop();
  if (d == NULL)
    snprintf(err, errlen,
             (opts->web != NULL && opts->web->tls)
                 ? "cannot start HTTPS (address in use, or cert_file and "
                   "key_file unusable or not a pair?)"
                 : "cannot listen (address in use or not local?)");
  return d;
}

/* Stop serving; waits for requests in progress. */
void http_stop(struct MHD_Daemon *daemon) {
  if (daemon != NULL)
    MHD_stop_daemon(daemon);
  watch_stop();
}

/* True when libmicrohttpd has HTTPS (see http.h). */
bool http_tls_supported(void) {
  return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
}

/* The libmicrohttpd version string. */
const char *http_library_version(void) {
  return MHD_get_version();
}
