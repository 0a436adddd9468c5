/*
 * sasl.h - SASL client mechanisms and base64 (sasl.c).
 * Internal to common/ (and its tests); adapters include smtp_probe.h only.
 */
#ifndef SP_SASL_H
#define SP_SASL_H

#include <stddef.h>

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

#endif /* SP_SASL_H */
