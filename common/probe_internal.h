/*
 * probe_internal.h - pieces of the core shared between its own files and
 * its unit tests; not for adapters (they include smtp_probe.h only).
 */
#ifndef SP_PROBE_INTERNAL_H
#define SP_PROBE_INTERNAL_H

#include <openssl/ssl.h>

#include "smtp_probe.h"

/* ---- buffer.c: growable buffers that always carry a cap -------------- */

/* A byte buffer that grows on demand up to a hard limit. */
struct sp_buf {
  char *data;   /* bytes, NUL-terminated for convenience */
  size_t len;   /* bytes used */
  size_t alloc; /* bytes allocated */
  size_t limit; /* never grows past this many bytes */
};

/* Start an empty buffer with a cap. */
void sp_buf_init(struct sp_buf *b, size_t limit);

/* Append n bytes; -1 (buffer unchanged) when that would pass the cap. */
int sp_buf_append(struct sp_buf *b, const void *data, size_t n);

/* Drop the first n bytes. */
void sp_buf_consume(struct sp_buf *b, size_t n);

/* Free the buffer's memory. */
void sp_buf_free(struct sp_buf *b);

/* Bounded copy of a C string (always NUL-terminates). */
void sp_strlcpy(char *dst, const char *src, size_t dstlen);

/* Append one dialogue line ("S: ..."/"C: ...") to a transcript,
 * sanitised; silently stops at the buffer's cap with a marker. */
void sp_transcript_add(struct sp_buf *t, const char *prefix, const char *data,
                       size_t len);

/* ---- reply.c: SMTP replies and EHLO capabilities --------------------- */

/* One (possibly multi-line) SMTP reply being assembled. */
struct sp_reply {
  int code;                /* three-digit code, 0 until a line is in */
  int nlines;              /* lines seen so far */
  struct sp_buf text;      /* lines without code, '\n'-separated, NUL-
                              terminated; grows up to SP_MAX_REPLY_BYTES */
  char first[SP_MAX_TEXT]; /* first line, sanitised, with its code */
};

/* What one feed of input into a reply found. */
enum sp_reply_status {
  SP_REPLY_MORE, /* the reply is not complete yet */
  SP_REPLY_DONE, /* a whole reply is in */
  SP_REPLY_ERROR /* malformed input or a cap was passed */
};

/* Start an empty reply (its text grows on demand, within the cap). */
void sp_reply_init(struct sp_reply *r);

/* Empty a reply for the next one (keeps its memory). */
void sp_reply_reset(struct sp_reply *r);

/* Free a reply's memory. */
void sp_reply_free(struct sp_reply *r);

/* Take complete lines from in (consuming them) into r until the reply is
 * whole; on error write why into err. Lines go to transcript when given. */
enum sp_reply_status sp_reply_feed(struct sp_reply *r, struct sp_buf *in,
                                   struct sp_buf *transcript, char *err,
                                   size_t errlen);

/* Parse an EHLO reply's lines into a capability structure. */
void sp_caps_parse(struct sp_caps *caps, const struct sp_reply *r);

/* Write a capability list as text ("PIPELINING SIZE=1024 AUTH(PLAIN)"). */
size_t sp_caps_format(const struct sp_caps *caps, char *buf, size_t buflen);

/* ---- sasl.c: SASL client mechanisms -------------------------------- */

/* Base64-encode n bytes (no newlines); length, or -1 if out is small. */
int sp_b64_encode(const void *in, size_t n, char *out, size_t outlen);

/* Base64-decode a NUL-terminated string; length, or -1. */
int sp_b64_decode(const char *in, unsigned char *out, size_t outlen);

/* PLAIN initial response: base64("\0user\0secret"). */
int sp_sasl_plain(const char *user, const char *secret, char *out,
                  size_t outlen);

/* CRAM-MD5 response to a base64 challenge (RFC 2195). */
int sp_sasl_cram_md5(const char *user, const char *secret,
                     const char *challenge_b64, char *out, size_t outlen);

/* XOAUTH2 initial response for a bearer token. */
int sp_sasl_xoauth2(const char *user, const char *token, char *out,
                    size_t outlen);

/* The mechanism to use from what the server offers; NULL when none. */
const char *sp_sasl_pick(const char *offered, const char *wanted);

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

/* A host name or IP literal of sane shape (request.c). */
bool sp_host_is_valid(const char *s);

/* An IPv4/IPv6 address; with_port also allows ":PORT" ("[v6]:PORT"). */
bool sp_ip_port_is_valid(const char *s, bool with_port);

/* sp_request_validate without opening the cafile: the engine checks
 * submitted requests with it (the adapters validated them whole; the
 * cafile is loaded once per file for its TLS context). */
int sp_request_check_fields(const struct sp_request *req, char *err,
                            size_t errlen);

#endif /* SP_PROBE_INTERNAL_H */
