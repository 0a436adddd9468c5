/*
 * tls.h - TLS client contexts, the sniffing BIO and what a session shows
 * (tls.c). Internal to common/ (and its tests); adapters include smtp_probe.h
 * only.
 */
#ifndef SP_TLS_H
#define SP_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>

#include "smtp_probe.h"

/* ---- tls.c: contexts and what a session shows ------------------------ */

/* Verification errors seen during one handshake (verify callback). */
struct sp_verify_log {
  int first_error;   /* first chain error other than expiry, 0: none */
  int first_depth;   /* its depth */
  bool expired_seen; /* some certificate was reported expired */
  bool cert_seen;    /* the server's certificate arrived (the chain was
                        checked), so a later failure is not about the
                        protocol version */
};

/* The first bytes OpenSSL read from the server, kept to recognise a
 * plaintext SMTP greeting where a TLS record was expected. */
struct sp_sniff {
  char data[128]; /* first bytes received */
  size_t len;     /* how many */
};

/* A socket BIO for fd wrapped in a filter that copies the first bytes
 * read into sniff (the BIO does not close fd). NULL on failure. */
BIO *sp_tls_sniff_bio(int fd, struct sp_sniff *sniff);

/* Make a client context trusting cafile (NULL: the system store);
 * legacy also allows TLS 1.0/1.1 at security level 0 (only to identify
 * weak servers). */
SSL_CTX *sp_tls_context_new(const char *cafile, bool legacy, char *err,
                            size_t errlen);

/* Verify the server's chain again at the strict context's level. */
void sp_tls_reverify(SSL *ssl, SSL_CTX *strict, struct sp_result *res);

/* Index of the SSL ex_data slot that holds a struct sp_verify_log *. */
int sp_tls_verify_index(void);

/* Fill the result's TLS fields (version, cipher, certificates, chain and
 * hostname verification) from an established session. */
void sp_tls_inspect(SSL *ssl, const struct sp_verify_log *log,
                    const char *verify_name, bool name_is_ip, bool no_verify,
                    struct sp_result *res);

/* The latest OpenSSL error as text (clears the queue). */
void sp_tls_error_text(char *buf, size_t buflen);

#endif /* SP_TLS_H */
