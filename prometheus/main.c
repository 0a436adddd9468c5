/*
 * main.c - smtp_exporter: flags, configuration, signals.
 *
 * A Prometheus multi-target exporter for mail ports: Prometheus scrapes
 * /probe?target=HOST[:PORT]&module=NAME and gets per-port success, phase
 * timings and a diagnosis code. SIGHUP or POST /-/reload reloads the
 * modules file; SIGINT/SIGTERM stop the exporter.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "exporter.h"
#include "http.h"
#include "metrics.h"
#include "modules.h"
#include "number.h"
#include "webconfig.h"

/* Everything the flags set. */
struct flags {
  const char *config_file; /* --config.file */
  bool config_check;       /* --config.check: validate and exit */
  const char *listen;      /* --web.listen-address */
  long max_connections;    /* --web.max-connections */
  long max_concurrent;     /* --probe.max-concurrent */
  double timeout_offset;   /* --probe.timeout-offset (seconds) */
  const char *log_level;   /* --log.level */
  const char *web_config;  /* --web.config.file, or NULL */
  long per_ip;             /* --web.max-connections-per-ip; 0: none */
  long idle_timeout;       /* --web.idle-timeout (seconds) */
  long header_timeout;     /* --web.read-header-timeout (seconds) */
  long history_limit;      /* --history.limit: recent probes kept */
};

/* Print the usage text to stdout. */
static void usage(void) {
  printf(
      "usage: smtp_exporter [flags]\n"
      "\n"
      "A Prometheus exporter that probes mail ports (multi-target pattern):\n"
      "  GET /probe?target=HOST[:PORT]&module=NAME[&debug=true]\n"
      "\n"
      "Flags:\n"
      "  --config.file=FILE          modules file (default "
      "smtp_exporter.yml)\n"
      "  --config.check              check the modules file and exit\n"
      "  --web.listen-address=[HOST]:PORT\n"
      "                              where to listen (default "
      "127.0.0.1:%d; an\n"
      "                              empty HOST is 127.0.0.1, use 0.0.0.0 or "
      "[::]\n"
      "                              to listen on every address)\n"
      "  --web.config.file=FILE      TLS and basic auth (Prometheus "
      "web-config\n"
      "                              format: tls_server_config, "
      "basic_auth_users)\n"
      "  --web.max-connections=N     concurrent HTTP connections (default "
      "128)\n"
      "  --web.max-connections-per-ip=N\n"
      "                              from one client address; 0: no limit "
      "(default 0:\n"
      "                              Prometheus scrapes from one address)\n"
      "  --web.idle-timeout=SECONDS  close a connection idle (or sending "
      "nothing)\n"
      "                              this long; 1..3600 (default 10)\n"
      "  --web.read-header-timeout=SECONDS\n"
      "                              the whole request header must arrive "
      "within\n"
      "                              this; 1..3600 (default 10)\n"
      "  --probe.max-concurrent=N    concurrent /probe requests; more wait "
      "for a\n"
      "                              slot until their deadline, then get 503 "
      "(default 32)\n"
      "  --probe.timeout-offset=SEC  subtracted from Prometheus' scrape "
      "timeout\n"
      "                              (default 0.5)\n"
      "  --history.limit=N           recent probes the landing page lists, "
      "each with\n"
      "                              its log at /logs?id=; 0..10000 (default "
      "100)\n"
      "  --log.level=LEVEL           error, warn, info or debug (default "
      "info)\n"
      "  --version                   print the version and exit\n"
      "  -h, --help                  print this help and exit\n",
      EXPORTER_DEFAULT_PORT);
}

/* How a valued flag's text is read. */
enum flag_kind {
  FLAG_TEXT,   /* any text, checked later (listen address, log level) */
  FLAG_PATH,   /* a file name: not empty */
  FLAG_LONG,   /* a whole number within [min, max] */
  FLAG_SECONDS /* seconds as a decimal number within [min, max] */
};

/* One flag that takes a value: its name, grammar and field. */
struct flag_def {
  const char *name;    /* "--web.max-connections" */
  enum flag_kind kind; /* how the value is read */
  long min, max;       /* bounds of a LONG or SECONDS value */
  const char *range;   /* the bounds as the error says them: "1..4096" */
  const char **text;   /* TEXT and PATH: the field */
  long *number;        /* LONG: the field */
  double *seconds;     /* SECONDS: the field */
};

/* Read one flag's value into its field; exits 2 with the flag's name
 * and range when it does not fit. */
static void set_flag(const struct flag_def *d, const char *value) {
  long n = 0;
  double v = 0;
  char *end = NULL;
  bool ok = true;
  switch (d->kind) {
  case FLAG_TEXT:
    *d->text = value;
    return;
  case FLAG_PATH:
    ok = value[0] != '\0';
    if (ok)
      *d->text = value;
    break;
  case FLAG_LONG:
    ok = number_parse_long(value, d->min, d->max, &n) == 0;
    if (ok)
      *d->number = n;
    break;
  case FLAG_SECONDS:
    errno = 0;
    v = strtod(value, &end);
    ok = errno == 0 && end != value && *end == '\0' && isfinite(v) &&
         v >= (double)d->min && v <= (double)d->max;
    if (ok)
      *d->seconds = v;
    break;
  }
  if (!ok) {
    fprintf(stderr, "smtp_exporter: %s: %s\n", d->name, d->range);
    exit(2);
  }
}

/* Parse the command line into f; exits on --help, --version and errors. */
static void parse_flags(int argc, char **argv, struct flags *f) {
  const struct flag_def defs[] = {
      {.name = "--config.file", .kind = FLAG_TEXT, .text = &f->config_file},
      {.name = "--web.listen-address", .kind = FLAG_TEXT, .text = &f->listen},
      {.name = "--web.max-connections",
       .kind = FLAG_LONG,
       .min = 1,
       .max = 4096,
       .range = "1..4096",
       .number = &f->max_connections},
      {.name = "--probe.max-concurrent",
       .kind = FLAG_LONG,
       .min = 1,
       .max = 1024,
       .range = "1..1024",
       .number = &f->max_concurrent},
      {.name = "--probe.timeout-offset",
       .kind = FLAG_SECONDS,
       .min = 0,
       .max = 60,
       .range = "0..60 s",
       .seconds = &f->timeout_offset},
      {.name = "--log.level", .kind = FLAG_TEXT, .text = &f->log_level},
      {.name = "--web.config.file",
       .kind = FLAG_PATH,
       .range = "empty path",
       .text = &f->web_config},
      {.name = "--web.max-connections-per-ip",
       .kind = FLAG_LONG,
       .min = 0,
       .max = 4096,
       .range = "0..4096",
       .number = &f->per_ip},
      {.name = "--web.idle-timeout",
       .kind = FLAG_LONG,
       .min = 1,
       .max = 3600,
       .range = "1..3600 s",
       .number = &f->idle_timeout},
      {.name = "--web.read-header-timeout",
       .kind = FLAG_LONG,
       .min = 1,
       .max = 3600,
       .range = "1..3600 s",
       .number = &f->header_timeout},
      {.name = "--history.limit",
       .kind = FLAG_LONG,
       .min = 0,
       .max = HISTORY_MAX_LIMIT,
       .range = "0..10000",
       .number = &f->history_limit},
  };
  const size_t ndefs = sizeof(defs) / sizeof(defs[0]);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage();
      exit(0);
    }
    if (strcmp(a, "--version") == 0) {
      printf("smtp_exporter, version %s (libmicrohttpd %s, libyaml %s)\n",
             SP_VERSION, http_library_version(), yaml_get_version_string());
      exit(0);
    }
    if (strcmp(a, "--config.check") == 0) {
      f->config_check = true;
      continue;
    }
    size_t nlen = strcspn(a, "=");
    const struct flag_def *d = NULL;
    for (size_t k = 0; d == NULL && k < ndefs; k++)
      if (strlen(defs[k].name) == nlen && strncmp(a, defs[k].name, nlen) == 0)
        d = &defs[k];
    if (d == NULL) {
      fprintf(stderr, "smtp_exporter: unknown flag %.64s (see --help)\n", a);
      exit(2);
    }
    if (a[nlen] == '=')
      set_flag(d, a + nlen + 1);
    else if (i + 1 < argc)
      set_flag(d, argv[++i]);
    else {
      fprintf(stderr, "smtp_exporter: %s needs a value\n", d->name);
      exit(2);
    }
  }
}

/* Parse [HOST]:PORT into a socket address; an empty HOST or "localhost"
 * is 127.0.0.1. Returns 0, or -1 when it is not numeric HOST:PORT. */
static int parse_listen(const char *text, struct sockaddr_storage *ss) {
  char host[64];
  const char *portstr;
  memset(ss, 0, sizeof(*ss));
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (close == NULL || close[1] != ':' ||
        (size_t)(close - text - 1) >= sizeof(host))
      return -1;
    memcpy(host, text + 1, (size_t)(close - text - 1));
    host[close - text - 1] = '\0';
    portstr = close + 2;
  } else {
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof(host))
      return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    portstr = colon + 1;
  }
  long port;
  if (number_parse_long(portstr, 1, 65535, &port) < 0)
    return -1;
  if (host[0] == '\0' || strcmp(host, "localhost") == 0)
    snprintf(host, sizeof(host), "127.0.0.1");
  struct sockaddr_in *sin = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    return 0;
  }
  if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    return 0;
  }
  return -1;
}

/* True when a listen address is on the loopback interface. */
static bool loopback_address(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
  }
  const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
  return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
}

/* Check the modules file, print the verdict, return the exit code. */
static int config_check(const char *path) {
  char err[1024];
  struct module_set *set = modules_load(path, err, sizeof(err));
  if (set == NULL) {
    fprintf(stderr, "smtp_exporter: --config.file: %s\n", err);
    return 1;
  }
  if (set->warning[0] != '\0')
    fprintf(stderr, "smtp_exporter: warning: %s\n", set->warning);
  printf("%s: %d modules OK\n", path, set->nmodules);
  modules_free(set);
  return 0;
}

/* Start everything, serve until SIGINT/SIGTERM, reload on SIGHUP. */
int main(int argc, char **argv) {
  char listen_default[32];
  snprintf(listen_default, sizeof(listen_default), "127.0.0.1:%d",
           EXPORTER_DEFAULT_PORT);
  struct flags f = {.config_file = "smtp_exporter.yml",
                    .config_check = false,
                    .listen = listen_default,
                    .max_connections = 128,
                    .max_concurrent = 32,
                    .timeout_offset = 0.5,
                    .log_level = "info",
                    .web_config = NULL,
                    .per_ip = 0,
                    .idle_timeout = 10,
                    .header_timeout = 10,
                    .history_limit = HISTORY_DEFAULT_LIMIT};
  parse_flags(argc, argv, &f);
  metrics_note_start();
  int level = exporter_log_level_from_name(f.log_level);
  if (level < 0) {
    fprintf(stderr, "smtp_exporter: --log.level: error, warn, info or "
                    "debug\n");
    return 2;
  }
  exporter_log_level = (enum log_level)level;
  static struct web_config web;
  if (f.web_config != NULL) {
    char werr[1024];
    if (webconfig_load(f.web_config, &web, werr, sizeof(werr)) < 0) {
      fprintf(stderr, "smtp_exporter: --web.config.file: %s\n", werr);
      return 1;
    }
    if (web.warning[0] != '\0')
      fprintf(stderr, "smtp_exporter: warning: --web.config.file: %s\n",
              web.warning);
    if (web.tls && !http_tls_supported()) {
      fprintf(stderr, "smtp_exporter: --web.config.file: this libmicrohttpd "
                      "has no HTTPS support\n");
      return 1;
    }
  }
  if (f.config_check)
    return config_check(f.config_file);
  struct sockaddr_storage addr;
  if (parse_listen(f.listen, &addr) < 0) {
    fprintf(stderr,
            "smtp_exporter: --web.listen-address: expected [HOST]:PORT with "
            "a numeric HOST, e.g. 127.0.0.1:%d or [::1]:%d\n",
            EXPORTER_DEFAULT_PORT, EXPORTER_DEFAULT_PORT);
    return 2;
  }

  /* Block the signals before any thread starts; main takes them below. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGHUP);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  static struct exporter ex;
  exporter_init(&ex, (int)f.max_concurrent);
  if (history_init(&ex.history, (int)f.history_limit) != 0) {
    fprintf(stderr, "smtp_exporter: out of memory for --history.limit\n");
    return 1;
  }
  ex.config_file = f.config_file;
  ex.timeout_offset_s = f.timeout_offset;
  char err[1024];
  if (exporter_reload(&ex, err, sizeof(err)) < 0)
    return 1;
  ex.engine = sp_engine_new(err, sizeof(err));
  if (ex.engine == NULL || sp_engine_start(ex.engine) != 0) {
    exporter_log(XLOG_ERROR, "cannot start the probe engine: %s",
                 ex.engine ? "thread" : err);
    return 1;
  }
  ex.web = f.web_config != NULL ? &web : NULL;
  ex.idle_timeout_s = (unsigned)f.idle_timeout;
  long per_ip = f.per_ip;
  struct http_options opts = {.addr = (const struct sockaddr *)&addr,
                              .max_connections = (unsigned)f.max_connections,
                              .idle_timeout_s = (unsigned)f.idle_timeout,
                              .header_timeout_s = (double)f.header_timeout,
                              .per_ip_limit = (unsigned)per_ip,
                              .web = ex.web};
  struct MHD_Daemon *daemon = http_start(&ex, &opts, err, sizeof(err));
  if (daemon == NULL) {
    exporter_log(XLOG_ERROR, "%s: %s", f.listen, err);
    sp_engine_free(ex.engine);
    return 1;
  }
  exporter_log(XLOG_INFO,
               "smtp_exporter %s listening on %s%s%s (max %ld concurrent "
               "probes, %ld connections, %ld per client address)",
               SP_VERSION, f.listen, web.tls ? " with TLS" : "",
               web.nusers ? ", basic auth" : "", f.max_concurrent,
               f.max_connections, per_ip);
  if (!loopback_address(&addr))
    exporter_log(XLOG_WARN,
                 "listening on %s, not loopback: anyone who can reach it can "
                 "make the exporter connect to mail ports%s",
                 f.listen,
                 ex.modules != NULL && ex.modules->allow.enabled
                     ? ""
                     : " anywhere (no allowed_targets in the modules file)");
  for (;;) {
    int sig = 0;
    if (sigwait(&sigs, &sig) != 0)
      continue;
    if (sig == SIGHUP) {
      exporter_log(XLOG_INFO, "SIGHUP: reloading %s", f.config_file);
      exporter_reload(&ex, err, sizeof(err));
      continue;
    }
    exporter_log(XLOG_INFO, "signal %d: shutting down", sig);
    break;
  }
  http_stop(daemon);
  sp_engine_free(ex.engine);
  webconfig_free(&web);
  struct module_set *set = ex.modules;
  ex.modules = NULL;
  exporter_modules_put(&ex, set);
  return 0;
}
