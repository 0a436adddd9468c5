/*
 * tls.c - client TLS contexts and inspection of an established session:
 * protocol, cipher, the certificates the server sent, chain and hostname
 * verification.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "buffer.h"
#include "tls.h"

/* The ex_data slot holding a struct sp_verify_log * per SSL. */
static int verify_index = -1;

/* Allocate the ex_data slot once. */
static void verify_index_init(void) {
  verify_index = SSL_get_ex_new_index(0, "sp_verify_log", NULL, NULL, NULL);
}

/* Index of the SSL ex_data slot for the verify log. */
int sp_tls_verify_index(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, verify_index_init);
  return verify_index;
}

/* Record chain errors and let the handshake go on: the probe judges
 * the certificate afterwards, so one bad certificate never hides the
 * TLS version, cipher and capabilities. */
static int verify_cb(int preverify_ok, X509_STORE_CTX *store) {
  SSL *ssl =
      X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
  struct sp_verify_log *log =
      ssl ? SSL_get_ex_data(ssl, sp_tls_verify_index()) : NULL;
  if (log)
    log->cert_seen = true;
  if (preverify_ok)
    return 1;
  int e = X509_STORE_CTX_get_error(store);
  if (log) {
    if (e == X509_V_ERR_CERT_HAS_EXPIRED)
      log->expired_seen = true;
    else if (log->first_error == 0) {
      log->first_error = e;
      log->first_depth = X509_STORE_CTX_get_error_depth(store);
    }
  }
  return 1;
}

/* Read through to the socket, keeping a copy of the first bytes. */
static int sniff_read(BIO *b, char *out, size_t outl, size_t *readbytes) {
  BIO *next = BIO_next(b);
  int r = BIO_read_ex(next, out, outl, readbytes);
  BIO_clear_retry_flags(b);
  BIO_copy_next_retry(b);
  struct sp_sniff *s = BIO_get_data(b);
  if (r > 0 && s && s->len < sizeof(s->data)) {
    size_t n = sizeof(s->data) - s->len;
    if (n > *readbytes)
      n = *readbytes;
    memcpy(s->data + s->len, out, n);
    s->len += n;
  }
  return r;
}

/* Write to the socket with send(MSG_NOSIGNAL): a server that closed
 * the connection gives EPIPE, never SIGPIPE, so the engine leaves the
 * process's signal dispositions alone. */
static int sniff_write(BIO *b, const char *in, size_t inl, size_t *written) {
  int fd = -1;
  BIO_clear_retry_flags(b);
  *written = 0;
  if (BIO_get_fd(BIO_next(b), &fd) < 0 || fd < 0)
    return 0;
  ssize_t n = send(fd, in, inl, MSG_NOSIGNAL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
      BIO_set_retry_write(b);
    return 0;
  }
  *written = (size_t)n;
  return 1;
}

/* Pass controls through to the socket BIO. */
static long sniff_ctrl(BIO *b, int cmd, long num, void *ptr) {
  BIO *next = BIO_next(b);
  return next ? BIO_ctrl(next, cmd, num, ptr) : 0;
}

/* The filter's method table, made once. */
static BIO_METHOD *sniff_method;

/* Build the sniff filter's method table. */
static void sniff_method_init(void) {
  sniff_method =
      BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER, "smtp-probe sniff");
  if (!sniff_method)
    return;
  BIO_meth_set_read_ex(sniff_method, sniff_read);
  BIO_meth_set_write_ex(sniff_method, sniff_write);
  BIO_meth_set_ctrl(sniff_method, sniff_ctrl);
}

/* A socket BIO wrapped in the sniffing filter. */
BIO *sp_tls_sniff_bio(int fd, struct sp_sniff *sniff) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, sniff_method_init);
  if (!sniff_method)
    return NULL;
  BIO *sock = BIO_new_socket(fd, BIO_NOCLOSE);
  BIO *filter = BIO_new(sniff_method);
  if (!sock || !filter) {
    BIO_free(sock);
    BIO_free(filter);
    return NULL;
  }
  BIO_set_data(filter, sniff);
  BIO_set_init(filter, 1);
  return BIO_push(filter, sock);
}

/* Make a client context trusting cafile (NULL: the system store). */
SSL_CTX *sp_tls_context_new(const char *cafile, bool legacy, char *err,
                            size_t errlen) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    sp_tls_error_text(err, errlen);
    return NULL;
  }
  int ok;
  if (cafile) {
    ok = SSL_CTX_load_verify_locations(ctx, cafile, NULL);
  } else {
    /* The hashed directory loads anchors lazily, as they are needed;
     * the bundle file is read whole (slower start), so it is the
     * fallback. */
    const char *dir = getenv(X509_get_default_cert_dir_env());
    if (!dir)
      dir = X509_get_default_cert_dir();
    ok = SSL_CTX_load_verify_locations(ctx, NULL, dir);
    if (ok != 1)
      ok = SSL_CTX_set_default_verify_paths(ctx);
  }
  if (ok != 1) {
    char why[128];
    sp_tls_error_text(why, sizeof(why));
    snprintf(err, errlen, "cafile: cannot load %s: %s",
             cafile ? cafile : "the system trust store", why);
    SSL_CTX_free(ctx);
    return NULL;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
  /* RELEASE_BUFFERS: an idle session (a probe waiting for a reply) keeps
   * no 16 KiB read/write buffers, which matters with thousands in flight */
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (!legacy) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  } else {
    /* Only to tell which old protocol a server speaks: the certificate is
     * judged again at the normal level (sp_tls_reverify). */
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
  }
  return ctx;
}

/* Convert an ASN1_TIME to UTC seconds; 0 on failure. */
static time_t asn1_to_time(const ASN1_TIME *t) {
  struct tm tm;
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
    return 0;
  return timegm(&tm);
}

/* Write a name as a sanitised one-line RFC 2253 string. */
static void name_text(X509_NAME *name, char *buf, size_t buflen) {
  buf[0] = '\0';
  BIO *bio = BIO_new(BIO_s_mem());
  if (!bio)
    return;
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char *data = NULL;
  long n = BIO_get_mem_data(bio, &data);
  if (n > 0)
    sp_sanitize(buf, buflen, data, (size_t)n);
  BIO_free(bio);
}

/* Write a certificate's DNS and IP subjectAltNames, comma separated. */
static void sans_text(X509 *cert, char *buf, size_t buflen, bool *has_ip) {
  buf[0] = '\0';
  *has_ip = false;
  GENERAL_NAMES *names =
      X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
  if (!names)
    return;
  size_t o = 0;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
    const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
    char item[80];
    item[0] = '\0';
    if (gn->type == GEN_DNS) {
      const ASN1_STRING *s = gn->d.dNSName;
      char v[72];
      sp_sanitize(v, sizeof(v), (const char *)ASN1_STRING_get0_data(s),
                  (size_t)ASN1_STRING_length(s));
      snprintf(item, sizeof(item), "DNS:%s", v);
    } else if (gn->type == GEN_IPADD) {
      const ASN1_OCTET_STRING *ip = gn->d.iPAddress;
      char v[64] = "?";
      int af = ASN1_STRING_length(ip) == 4 ? AF_INET : AF_INET6;
      if (ASN1_STRING_length(ip) == 4 || ASN1_STRING_length(ip) == 16)
        inet_ntop(af, ASN1_STRING_get0_data(ip), v, sizeof(v));
      snprintf(item, sizeof(item), "IP:%s", v);
      *has_ip = true;
    } else {
      continue;
    }
    int n = snprintf(buf + o, buflen - o, "%s%s", o ? "," : "", item);
    if (n < 0 || (size_t)n >= buflen - o) {
      buf[o] = '\0';
      break;
    }
    o += (size_t)n;
  }
  GENERAL_NAMES_free(names);
}

/* True for a certificate whose subject and issuer are the same. */
static bool self_issued(X509 *cert) {
  return X509_NAME_cmp(X509_get_subject_name(cert),
                       X509_get_issuer_name(cert)) == 0;
}

/* Fill the result's TLS fields from an established session. */
void sp_tls_inspect(SSL *ssl, const struct sp_verify_log *log,
                    const char *verify_name, bool name_is_ip, bool no_verify,
                    struct sp_result *res) {
  sp_strlcpy(res->tls_version, SSL_get_version(ssl), sizeof(res->tls_version));
  const char *cipher = SSL_get_cipher_name(ssl);
  sp_strlcpy(res->tls_cipher, cipher ? cipher : "", sizeof(res->tls_cipher));

  STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
  X509 *leaf = SSL_get0_peer_certificate(ssl);
  bool leaf_has_ip = false;
  res->ncerts = 0;
  res->leaf_not_after = 0;
  res->chain_not_after = 0;
  int n = chain ? sk_X509_num(chain) : 0;
  if (n > SP_MAX_CERTS)
    n = SP_MAX_CERTS;
  /* only what was sent is kept (a probe in flight holds no empty slots);
   * a second handshake of the same probe replaces the first's */
  free(res->certs);
  res->certs = n > 0 ? calloc((size_t)n, sizeof(*res->certs)) : NULL;
  if (!res->certs)
    n = 0;
  for (int i = 0; i < n; i++) {
    X509 *c = sk_X509_value(chain, i);
    struct sp_cert *out = &res->certs[res->ncerts++];
    bool has_ip = false;
    name_text(X509_get_subject_name(c), out->subject, sizeof(out->subject));
    name_text(X509_get_issuer_name(c), out->issuer, sizeof(out->issuer));
    sans_text(c, out->sans, sizeof(out->sans), &has_ip);
    out->not_after = asn1_to_time(X509_get0_notAfter(c));
    if (i == 0) {
      res->leaf_not_after = out->not_after;
      leaf_has_ip = has_ip;
    }
    /* A root the server sent along is a trust anchor, not part of what
     * clients use: it does not count for the earliest expiry. */
    if (i > 0 && self_issued(c))
      continue;
    if (out->not_after &&
        (res->chain_not_after == 0 || out->not_after < res->chain_not_after))
      res->chain_not_after = out->not_after;
  }

  sp_strlcpy(res->verify_name, verify_name ? verify_name : "",
             sizeof(res->verify_name));
  if (no_verify || !leaf) {
    res->verified = false;
    res->hostname_check = -1;
    sp_strlcpy(res->verify_error,
               no_verify ? "verification disabled" : "no certificate",
               sizeof(res->verify_error));
    return;
  }
  if (log->first_error) {
    res->verified = false;
    snprintf(res->verify_error, sizeof(res->verify_error), "depth %d: %s",
             log->first_depth, X509_verify_cert_error_string(log->first_error));
  } else {
    res->verified = true;
    res->verify_error[0] = '\0';
  }
  if (!verify_name || !*verify_name) {
    res->hostname_check = -1;
  } else if (name_is_ip) {
    if (X509_check_ip_asc(leaf, verify_name, 0) == 1)
      res->hostname_check = 1;
    else
      res->hostname_check = leaf_has_ip ? 0 : -1;
  } else {
    res->hostname_check =
        X509_check_host(leaf, verify_name, 0,
                        X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1
            ? 1
            : 0;
  }
}

/* The latest OpenSSL error as text (clears the queue). */
void sp_tls_error_text(char *buf, size_t buflen) {
  unsigned long e = ERR_get_error();
  unsigned long last = e;
  while (e) {
    last = e;
    e = ERR_get_error();
  }
  if (last)
    ERR_error_string_n(last, buf, buflen);
  else if (buflen)
    sp_strlcpy(buf, "unknown TLS error", buflen);
}

/* Verify the server's chain again with the strict context's trust store
 * and its security level (after a legacy handshake at level 0). */
void sp_tls_reverify(SSL *ssl, SSL_CTX *strict, struct sp_result *res) {
  X509 *leaf = SSL_get0_peer_certificate(ssl);
  if (!leaf)
    return;
  X509_STORE_CTX *sctx = X509_STORE_CTX_new();
  if (!sctx)
    return;
  STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
  if (X509_STORE_CTX_init(sctx, SSL_CTX_get_cert_store(strict), leaf, chain) ==
      1) {
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(sctx);
    X509_VERIFY_PARAM_set_auth_level(param, SSL_CTX_get_security_level(strict));
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
    int ok = X509_verify_cert(sctx);
    int e = X509_STORE_CTX_get_error(sctx);
    if (ok == 1 || e == X509_V_ERR_CERT_HAS_EXPIRED) {
      res->verified = true;
      res->verify_error[0] = '\0';
    } else {
      res->verified = false;
      snprintf(res->verify_error, sizeof(res->verify_error),
               "depth %d: %s (at the normal security level)",
               X509_STORE_CTX_get_error_depth(sctx),
               X509_verify_cert_error_string(e));
    }
  }
  X509_STORE_CTX_free(sctx);
}
