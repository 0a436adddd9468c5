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
#include "fileio.h"
#include "http.h"
#include "metrics.h"
#include "modules.h"
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
      "  --log.level=LEVEL           error, warn, info or debug (default "
      "info)\n"
      "  --version                   print the version and exit\n"
      "  -h, --help                  print this help and exit\n",
      EXPORTER_DEFAULT_PORT);
}

/* Parse the command line into f; exits on --help, --version and errors. */
static void parse_flags(int argc, char **argv, struct flags *f) {
  static const char *const valued[] = {
      "--config.file",          "--web.listen-address",
      "--web.max-connections",  "--probe.max-concurrent",
      "--probe.timeout-offset", "--log.level",
      "--web.config.file",      "--web.max-connections-per-ip",
      "--web.idle-timeout",     "--web.read-header-timeout"};
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
    const char *value = NULL;
    size_t nlen = strcspn(a, "=");
    size_t k;
    for (k = 0; k < sizeof(valued) / sizeof(valued[0]); k++)
      if (strlen(valued[k]) == nlen && strncmp(a, valued[k], nlen) == 0)
        break;
    if (k == sizeof(valued) / sizeof(valued[0])) {
      fprintf(stderr, "smtp_exporter: unknown flag %.64s (see --help)\n", a);
      exit(2);
    }
    if (a[nlen] == '=')
      value = a + nlen + 1;
    else if (i + 1 < argc)
      value = argv[++i];
    else {
      fprintf(stderr, "smtp_exporter: %s needs a value\n", valued[k]);
      exit(2);
    }
    long n;
    char *end = NULL;
    switch (k) {
    case 0:
      f->config_file = value;
      break;
    case 1:
      f->listen = value;
      break;
    case 2:
      if (fileio_parse_long(value, 1, 4096, &n) < 0) {
        fprintf(stderr, "smtp_exporter: --web.max-connections: 1..4096\n");
        exit(2);
      }
      f->max_connections = n;
      break;
    case 3:
      if (fileio_parse_long(value, 1, 1024, &n) < 0) {
        fprintf(stderr, "smtp_exporter: --probe.max-concurrent: 1..1024\n");
        exit(2);
      }
      f->max_concurrent = n;
      break;
    case 4:
      errno = 0;
      f->timeout_offset = strtod(value, &end);
      if (errno != 0 || end == value || *end != '\0' ||
          !isfinite(f->timeout_offset) || f->timeout_offset < 0 ||
          f->timeout_offset > 60) {
        fprintf(stderr, "smtp_exporter: --probe.timeout-offset: 0..60 s\n");
        exit(2);
      }
      break;
    case 5:
      f->log_level = value;
      break;
    case 6:
      if (value[0] == '\0') {
        fprintf(stderr, "smtp_exporter: --web.config.file: empty path\n");
        exit(2);
      }
      f->web_config = value;
      break;
    case 7:
      if (fileio_parse_long(value, 0, 4096, &n) < 0) {
        fprintf(stderr,
                "smtp_exporter: --web.max-connections-per-ip: 0..4096\n");
        exit(2);
      }
      f->per_ip = n;
      break;
    case 8:
      if (fileio_parse_long(value, 1, 3600, &n) < 0) {
        fprintf(stderr, "smtp_exporter: --web.idle-timeout: 1..3600 s\n");
        exit(2);
      }
      f->idle_timeout = n;
      break;
    default:
      if (fileio_parse_long(value, 1, 3600, &n) < 0) {
        fprintf(stderr,
                "smtp_exporter: --web.read-header-timeout: 1..3600 s\n");
        exit(2);
      }
      f->header_timeout = n;
      break;
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
  if (fileio_parse_long(portstr, 1, 65535, &port) < 0)
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
  struct flags f = {
      "smtp_exporter.yml", false, NULL, 128, 32, 0.5, "info", NULL, 0, 10, 10};
  char listen_default[32];
  snprintf(listen_default, sizeof(listen_default), "127.0.0.1:%d",
           EXPORTER_DEFAULT_PORT);
  f.listen = listen_default;
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
  struct http_options opts = {(const struct sockaddr *)&addr,
                              (unsigned)f.max_connections,
                              (unsigned)f.idle_timeout,
                              (double)f.header_timeout,
                              (unsigned)per_ip,
                              ex.web};
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
