/*
 * webconfig.h - the exporter's own endpoint protection, read from
 * --web.config.file in the Prometheus web-config format:
 *
 *   tls_server_config:
 *     cert_file: /etc/smtp_exporter/tls.crt
 *     key_file: /etc/smtp_exporter/tls.key
 *   basic_auth_users:
 *     prometheus: $2y$10$...   # bcrypt hash
 *
 * Only these keys are supported; any other key is an error naming it.
 */
#ifndef SMTP_EXPORTER_WEBCONFIG_H
#define SMTP_EXPORTER_WEBCONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* Most basic_auth_users. */
#define WEB_MAX_USERS 64
/* Largest web config, certificate or key file read. */
#define WEB_MAX_FILE (1024 * 1024)
/* Longest user name, with its NUL. */
#define WEB_MAX_USER 128

/* One user allowed in by basic auth. */
struct web_user {
  char name[WEB_MAX_USER]; /* the user name */
  char hash[64];           /* its bcrypt hash ($2a$/$2b$/$2y$, 60 chars) */
};

/* The loaded web configuration. */
struct web_config {
  bool tls;                             /* tls_server_config given */
  char *cert_pem;                       /* the certificate chain, PEM */
  char *key_pem;                        /* the private key, PEM */
  struct web_user users[WEB_MAX_USERS]; /* basic_auth_users */
  int nusers;                           /* how many; 0: no auth */
  char warning[256];                    /* a non-fatal remark, or "" */
};

/* Parse web config YAML text; name is used in messages, relative file
 * paths are taken as given. Returns 0, or -1 with "NAME:LINE:COL: message"
 * in err. */
int webconfig_parse(const char *text, size_t len, const char *name,
                    struct web_config *wc, char *err, size_t errlen);

/* Read and parse a web config file. Returns 0, or -1 with a message. */
int webconfig_load(const char *path, struct web_config *wc, char *err,
                   size_t errlen);

/* Free what a web config holds (the key is wiped first). */
void webconfig_free(struct web_config *wc);

/* True when user and password match a basic_auth_users entry (bcrypt,
 * through libcrypt). Takes the same time for unknown users. */
bool webconfig_check_user(const struct web_config *wc, const char *user,
                          const char *password);

/* True when text looks like a bcrypt hash this libcrypt can check. */
bool webconfig_bcrypt_hash(const char *text);

#endif /* SMTP_EXPORTER_WEBCONFIG_H */
