/*
 * sasl.c - client side of the SASL mechanisms smtp-probe speaks
 * (PLAIN, LOGIN, CRAM-MD5, XOAUTH2), and base64.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sasl.h"
#include "smtp_probe.h"

/* Base64-encode n bytes (no newlines); -1 when out is too small. */
int sp_b64_encode(const void *in, size_t n, char *out, size_t outlen) {
  if (outlen < 4 * ((n + 2) / 3) + 1)
    return -1;
  int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
  return len < 0 ? -1 : len;
}

/* Base64-decode; returns the decoded length or -1. */
int sp_b64_decode(const char *in, unsigned char *out, size_t outlen) {
  size_t n = strlen(in);
  if (n % 4 != 0 || outlen < 3 * (n / 4) + 1)
    return -1;
  int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
  if (len < 0)
    return -1;
  int pad = 0; /* EVP_DecodeBlock counts padding as data: take it off */
  while (pad < 2 && n > (size_t)pad && in[n - 1 - (size_t)pad] == '=')
    pad++;
  if (len < pad || (n > (size_t)pad && in[n - 1 - (size_t)pad] == '='))
    return -1; /* more padding than base64 allows */
  len -= pad;
  out[len] = '\0';
  return len;
}

/* The initial response of PLAIN: base64("\0user\0secret"). */
int sp_sasl_plain(const char *user, const char *secret, char *out,
                  size_t outlen) {
  char raw[SP_MAX_SECRET + SP_MAX_HOST + 4];
  size_t ul = strlen(user), sl = strlen(secret);
  if (ul + sl + 2 > sizeof(raw))
    return -1;
  raw[0] = '\0';
  memcpy(raw + 1, user, ul);
  raw[1 + ul] = '\0';
  memcpy(raw + 2 + ul, secret, sl);
  int r = sp_b64_encode(raw, ul + sl + 2, out, outlen);
  OPENSSL_cleanse(raw, sizeof(raw));
  return r;
}

/* The response to a CRAM-MD5 challenge (RFC 2195):
 * base64(user " " hex(HMAC-MD5(secret, challenge))). */
int sp_sasl_cram_md5(const char *user, const char *secret,
                     const char *challenge_b64, char *out, size_t outlen) {
  unsigned char challenge[512];
  int cl = sp_b64_decode(challenge_b64, challenge, sizeof(challenge));
  if (cl <= 0)
    return -1;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  if (!HMAC(EVP_md5(), secret, (int)strlen(secret), challenge, (size_t)cl, mac,
            &maclen))
    return -1;
  char resp[SP_MAX_HOST + 2 * EVP_MAX_MD_SIZE + 2];
  size_t ul = strlen(user);
  if (ul + 1 + 2 * maclen + 1 > sizeof(resp))
    return -1;
  memcpy(resp, user, ul);
  resp[ul] = ' ';
  for (unsigned int i = 0; i < maclen; i++)
    snprintf(resp + ul + 1 + 2 * i, 3, "%02x", mac[i]);
  return sp_b64_encode(resp, ul + 1 + 2 * maclen, out, outlen);
}

/* The initial response of XOAUTH2:
 * base64("user=" user "\1auth=Bearer " token "\1\1"). */
int sp_sasl_xoauth2(const char *user, const char *token, char *out,
                    size_t outlen) {
  char raw[SP_MAX_SECRET + SP_MAX_HOST + 32];
  int n = snprintf(raw, sizeof(raw), "user=%s\001auth=Bearer %s\001\001", user,
                   token);
  if (n < 0 || (size_t)n >= sizeof(raw))
    return -1;
  int r = sp_b64_encode(raw, (size_t)n, out, outlen);
  OPENSSL_cleanse(raw, sizeof(raw));
  return r;
}

/* True when the space-separated list has word (case-insensitive). */
static bool list_has(const char *list, const char *word) {
  size_t wl = strlen(word);
  while (*list) {
    size_t l = strcspn(list, " ");
    if (l == wl && strncasecmp(list, word, l) == 0)
      return true;
    list += l;
    while (*list == ' ')
      list++;
  }
  return false;
}

/* The mechanisms we speak, the strongest password one first; XOAUTH2
 * (a bearer token) last, used only when asked for. The one list. */
static const char *const mechanisms[] = {"CRAM-MD5", "PLAIN", "LOGIN",
                                         "XOAUTH2"};

/* The canonical spelling of a mechanism we speak (any case in), or NULL. */
const char *sp_auth_mech_canonical(const char *name) {
  for (size_t i = 0; name && i < sizeof(mechanisms) / sizeof(mechanisms[0]);
       i++)
    if (strcasecmp(name, mechanisms[i]) == 0)
      return mechanisms[i];
  return NULL;
}

/* The mechanism to use: wanted if offered, else the strongest offered
 * password mechanism (CRAM-MD5, PLAIN, LOGIN); NULL when none fits.
 * XOAUTH2 is used only when asked for (it takes a token). */
const char *sp_sasl_pick(const char *offered, const char *wanted) {
  static const char *const order[] = {"CRAM-MD5", "PLAIN", "LOGIN"};
  if (wanted) {
    const char *m = sp_auth_mech_canonical(wanted);
    return m && list_has(offered, m) ? m : NULL;
  }
  for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
    if (list_has(offered, order[i]))
      return order[i];
  return NULL;
}
