/*
 * http.h - the exporter's HTTP server on libmicrohttpd: /probe, /metrics,
 * the landing page, /-/healthy, /-/ready and /-/reload.
 */
#ifndef SMTP_EXPORTER_HTTP_H
#define SMTP_EXPORTER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "exporter.h"

struct MHD_Daemon;

/* How the HTTP server runs. */
struct http_options {
  const struct sockaddr *addr;  /* where to listen */
  unsigned max_connections;     /* MHD_OPTION_CONNECTION_LIMIT */
  unsigned idle_timeout_s;      /* MHD_OPTION_CONNECTION_TIMEOUT */
  double header_timeout_s;      /* whole request header within this */
  unsigned per_ip_limit;        /* MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0: off */
  const struct web_config *web; /* TLS and basic auth, or NULL */
};

/* Start serving (one thread per connection, bounded by max_connections).
 * NULL with a message in err on failure. */
struct MHD_Daemon *http_start(struct exporter *ex,
                              const struct http_options *opts, char *err,
                              size_t errlen);

/* Stop serving; waits for requests in progress. */
void http_stop(struct MHD_Daemon *daemon);

/* Connections shut down because their request header did not arrive
 * within header_timeout_s. */
unsigned long http_header_timeouts(void);

/* True when this libmicrohttpd was built with HTTPS (GnuTLS). */
bool http_tls_supported(void);

/* The libmicrohttpd version string. */
const char *http_library_version(void);

#endif /* SMTP_EXPORTER_HTTP_H */
