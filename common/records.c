/*
 * records.c - parsers of the mail-domain records (MTA-STS TXT and policy,
 * TLS-RPT, DMARC, SPF, DKIM keys) and the MTA-STS mx pattern match, for
 * the mail-domain mode (issue 14; see records.h).
 *
 * The rules are the RFCs' (8461, 8460, 7489, 7208, 6376), including the
 * points the common checkers get wrong: an mx pattern is anchored and its
 * "*" is one label; exactly one record of a kind counts. Every input is
 * bounded (SP_RECORD_MAX, SP_STS_MAX_BODY) and parsed without trust.
 */
#include "records.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buffer.h"
#include "sasl.h"

/* Write why a record does not count into err; returns -1. */
static int refuse(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- Tag lists ("name=value; name=value", RFC 6376 §3.2) --------------- */

/* Read the next tag of a tag list at *p into name and value (spaces
 * around both trimmed); 1 a tag, 0 the end, -1 malformed. */
static int next_tag(const char **p, const char *end, char *name, size_t namelen,
                    char *value, size_t valuelen) {
  const char *s = *p;
  while (s < end && (*s == ' ' || *s == '\t' || *s == ';'))
    s++;
  if (s >= end)
    return 0;
  const char *eq = memchr(s, '=', (size_t)(end - s));
  const char *semi = memchr(s, ';', (size_t)(end - s));
  if (!eq || (semi && semi < eq))
    return -1;
  const char *ne = eq;
  while (ne > s && (ne[-1] == ' ' || ne[-1] == '\t'))
    ne--;
  if (ne == s || (size_t)(ne - s) >= namelen)
    return -1;
  for (const char *c = s; c < ne; c++)
    if (!isalnum((unsigned char)*c) && *c != '_')
      return -1;
  memcpy(name, s, (size_t)(ne - s));
  name[ne - s] = '\0';
  const char *v = eq + 1;
  const char *ve = semi ? semi : end;
  while (v < ve && (*v == ' ' || *v == '\t'))
    v++;
  while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
    ve--;
  if ((size_t)(ve - v) >= valuelen)
    return -1;
  memcpy(value, v, (size_t)(ve - v));
  value[ve - v] = '\0';
  *p = semi ? semi + 1 : end;
  return 1;
}

/* The end of a record read under the cap, or NULL when it is too long. */
static const char *record_end(const char *txt) {
  size_t n = strnlen(txt, SP_RECORD_MAX + 1);
  return n > SP_RECORD_MAX ? NULL : txt + n;
}

/* Split a comma-separated URI list into out (at most max); the schemes
 * allowed are mailto: and, when https is true, https:. 0, or -1 with err. */
static int uri_list(const char *list, bool https, char out[][256], int max,
                    int *n, char *err, size_t errlen) {
  *n = 0;
  const char *s = list;
  while (*s) {
    const char *comma = strchr(s, ',');
    size_t len = comma ? (size_t)(comma - s) : strlen(s);
    while (len && (*s == ' ')) {
      s++;
      len--;
    }
    while (len && s[len - 1] == ' ')
      len--;
    bool mailto = len > 7 && strncasecmp(s, "mailto:", 7) == 0;
    bool web = https && len > 8 && strncasecmp(s, "https://", 8) == 0;
    if (!mailto && !web)
      return refuse(err, errlen, "report URI \"%.*s\" is not %s",
                    (int)(len > 60 ? 60 : len), s,
                    https ? "mailto: or https:" : "mailto:");
    if (*n < max && len < 256) {
      memcpy(out[*n], s, len);
      out[*n][len] = '\0';
      (*n)++;
    }
    if (!comma)
      break;
    s = comma + 1;
  }
  if (*n == 0)
    return refuse(err, errlen, "no report URI");
  return 0;
}

/* ---- MTA-STS (RFC 8461) ------------------------------------------------- */

/* Check an MTA-STS TXT record (see records.h). */
int sp_sts_txt_parse(const char *txt, char *id, size_t idlen, char *err,
                     size_t errlen) {
  const char *end = txt ? record_end(txt) : NULL;
  if (!end)
    return refuse(err, errlen, "no record, or longer than %d bytes",
                  SP_RECORD_MAX);
  if (strncmp(txt, "v=STSv1", 7) != 0 ||
      (txt[7] != ';' && txt[7] != ' ' && txt[7] != '\0'))
    return refuse(err, errlen, "does not start with v=STSv1");
  const char *p = txt + 7;
  char name[32], value[64];
  bool have_id = false;
  int r;
  while ((r = next_tag(&p, end, name, sizeof(name), value, sizeof(value))) ==
         1) {
    if (strcmp(name, "id") != 0)
      continue; /* other fields are extensions */
    size_t n = strlen(value);
    bool ok = n >= 1 && n <= 32;
    for (size_t i = 0; ok && i < n; i++)
      ok = isalnum((unsigned char)value[i]) != 0;
    if (!ok)
      return refuse(err, errlen, "id \"%.40s\" is not 1-32 letters and digits",
                    value);
    if (have_id)
      return refuse(err, errlen, "id= given twice");
    sp_strlcpy(id, value, idlen);
    have_id = true;
  }
  if (r < 0)
    return refuse(err, errlen, "malformed field list");
  if (!have_id)
    return refuse(err, errlen, "no id=");
  return 0;
}

/* Parse an MTA-STS policy body (see records.h). */
int sp_sts_policy_parse(const char *body, size_t len, struct sp_sts_policy *out,
                        char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  out->max_age = -1;
  if (len > SP_STS_MAX_BODY)
    return refuse(err, errlen, "policy longer than %d bytes", SP_STS_MAX_BODY);
  bool have_version = false, have_mode = false;
  size_t i = 0;
  int lineno = 0;
  while (i < len) {
    size_t e = i;
    while (e < len && body[e] != '\n')
      e++;
    size_t le = e > i && body[e - 1] == '\r' ? e - 1 : e;
    lineno++;
    const char *line = body + i;
    size_t n = le - i;
    i = e + 1;
    if (n == 0)
      continue;
    const char *colon = memchr(line, ':', n);
    if (!colon)
      return refuse(err, errlen, "line %d is not \"key: value\"", lineno);
    size_t kl = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vl = n - kl - 1;
    while (vl && (*v == ' ' || *v == '\t')) {
      v++;
      vl--;
    }
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
      vl--;
    char value[256];
    if (vl >= sizeof(value))
      return refuse(err, errlen, "line %d: value too long", lineno);
    memcpy(value, v, vl);
    value[vl] = '\0';
    if (kl == 7 && strncmp(line, "version", 7) == 0) {
      if (strcmp(value, "STSv1") != 0)
        return refuse(err, errlen, "version is not STSv1");
      have_version = true;
    } else if (kl == 4 && strncmp(line, "mode", 4) == 0) {
      if (strcmp(value, "enforce") == 0)
        out->mode = SP_STS_ENFORCE;
      else if (strcmp(value, "testing") == 0)
        out->mode = SP_STS_TESTING;
      else if (strcmp(value, "none") == 0)
        out->mode = SP_STS_NONE;
      else
        return refuse(err, errlen,
                      "mode \"%.20s\" is not enforce, testing or none", value);
      have_mode = true;
    } else if (kl == 7 && strncmp(line, "max_age", 7) == 0) {
      char *end = NULL;
      long a = strtol(value, &end, 10);
      if (!value[0] || *end || a < 0 || a > SP_STS_MAX_AGE)
        return refuse(err, errlen, "max_age \"%.20s\" is not 0-%ld seconds",
                      value, SP_STS_MAX_AGE);
      out->max_age = a;
    } else if (kl == 2 && strncmp(line, "mx", 2) == 0) {
      if (out->nmx < SP_STS_MAX_MX)
        sp_strlcpy(out->mx[out->nmx++], value, sizeof(out->mx[0]));
    } /* other keys are extensions: ignored */
  }
  if (!have_version || !have_mode || out->max_age < 0)
    return refuse(err, errlen, "missing %s",
                  !have_version ? "version"
                  : !have_mode  ? "mode"
                                : "max_age");
  if (out->mode != SP_STS_NONE && out->nmx == 0)
    return refuse(err, errlen, "no mx line (required unless the mode is none)");
  return 0;
}

/* Compare n bytes of two names, any case. */
static bool same_name(const char *a, const char *b, size_t n) {
  return strncasecmp(a, b, n) == 0;
}

/* Whether an MX host name matches an mx pattern (see records.h). */
bool sp_sts_mx_match(const char *pattern, const char *host) {
  if (!pattern || !host)
    return false;
  size_t pl = strnlen(pattern, 256), hl = strnlen(host, 256);
  if (pl && pattern[pl - 1] == '.')
    pl--;
  if (hl && host[hl - 1] == '.')
    hl--;
  if (pl == 0 || hl == 0)
    return false;
  if (pl >= 2 && pattern[0] == '*' && pattern[1] == '.') {
    /* "*.example.com": one label, then exactly ".example.com". */
    size_t sl = pl - 1; /* ".example.com" */
    if (hl <= sl || !same_name(host + hl - sl, pattern + 1, sl))
      return false;
    size_t label = hl - sl;
    return memchr(host, '.', label) == NULL; /* one label, not several */
  }
  return pl == hl && same_name(pattern, host, pl);
}

/* ---- TLS-RPT (RFC 8460) -------------------------------------------------- */

/* Parse a TLS-RPT record (see records.h). */
int sp_tlsrpt_parse(const char *txt, struct sp_tlsrpt *out, char *err,
                    size_t errlen) {
  memset(out, 0, sizeof(*out));
  const char *end = txt ? record_end(txt) : NULL;
  if (!end)
    return refuse(err, errlen, "no record, or longer than %d bytes",
                  SP_RECORD_MAX);
  const char *p = txt;
  char name[32], value[SP_RECORD_MAX + 1];
  int r = next_tag(&p, end, name, sizeof(name), value, sizeof(value));
  if (r != 1 || strcmp(name, "v") != 0 || strcmp(value, "TLSRPTv1") != 0)
    return refuse(err, errlen, "does not start with v=TLSRPTv1");
  bool have_rua = false;
  while ((r = next_tag(&p, end, name, sizeof(name), value, sizeof(value))) ==
         1) {
    if (strcmp(name, "rua") != 0)
      continue;
    if (have_rua)
      return refuse(err, errlen, "rua= given twice");
    if (uri_list(value, true, out->rua, SP_RPT_MAX_URIS, &out->nrua, err,
                 errlen) != 0)
      return -1;
    have_rua = true;
  }
  if (r < 0)
    return refuse(err, errlen, "malformed field list");
  if (!have_rua)
    return refuse(err, errlen, "no rua=");
  return 0;
}

/* ---- DMARC (RFC 7489) ---------------------------------------------------- */

/* A DMARC policy word, or -1. */
static int dmarc_policy(const char *s) {
  if (strcasecmp(s, "none") == 0)
    return SP_DMARC_NONE;
  if (strcasecmp(s, "quarantine") == 0)
    return SP_DMARC_QUARANTINE;
  if (strcasecmp(s, "reject") == 0)
    return SP_DMARC_REJECT;
  return -1;
}

/* Parse a DMARC record (see records.h). */
int sp_dmarc_parse(const char *txt, struct sp_dmarc *out, char *err,
                   size_t errlen) {
  memset(out, 0, sizeof(*out));
  out->pct = 100;
  const char *end = txt ? record_end(txt) : NULL;
  if (!end)
    return refuse(err, errlen, "no record, or longer than %d bytes",
                  SP_RECORD_MAX);
  const char *p = txt;
  char name[32], value[SP_RECORD_MAX + 1];
  int r = next_tag(&p, end, name, sizeof(name), value, sizeof(value));
  if (r != 1 || strcmp(name, "v") != 0 || strcmp(value, "DMARC1") != 0)
    return refuse(err, errlen, "does not start with v=DMARC1");
  bool have_p = false, have_sp = false;
  while ((r = next_tag(&p, end, name, sizeof(name), value, sizeof(value))) ==
         1) {
    int pol;
    if (strcmp(name, "p") == 0 || strcmp(name, "sp") == 0 ||
        strcmp(name, "np") == 0) {
      if ((pol = dmarc_policy(value)) < 0)
        return refuse(err, errlen, "%s=%.20s is not none, quarantine or reject",
                      name, value);
      if (strcmp(name, "p") == 0) {
        out->p = (enum sp_dmarc_policy)pol;
        have_p = true;
      } else if (strcmp(name, "sp") == 0) {
        out->sp = (enum sp_dmarc_policy)pol;
        have_sp = true;
      }
    } else if (strcmp(name, "adkim") == 0 || strcmp(name, "aspf") == 0) {
      if (strcmp(value, "r") != 0 && strcmp(value, "s") != 0)
        return refuse(err, errlen, "%s=%.20s is not r or s", name, value);
      if (name[1] == 'd')
        out->strict_dkim = value[0] == 's';
      else
        out->strict_spf = value[0] == 's';
    } else if (strcmp(name, "pct") == 0) {
      char *e = NULL;
      long v = strtol(value, &e, 10);
      if (!value[0] || *e || v < 0 || v > 100)
        return refuse(err, errlen, "pct=%.20s is not 0-100", value);
      out->pct = (int)v;
    } else if (strcmp(name, "rua") == 0) {
      if (uri_list(value, false, out->rua, SP_RPT_MAX_URIS, &out->nrua, err,
                   errlen) != 0)
        return -1;
    } /* ruf, fo, rf, ri, psd, t and unknown tags: not needed here */
  }
  if (r < 0)
    return refuse(err, errlen, "malformed tag list");
  if (!have_p)
    return refuse(err, errlen, "no p= (it is required)");
  if (!have_sp)
    out->sp = out->p;
  return 0;
}

/* ---- SPF (RFC 7208) ------------------------------------------------------ */

/* Check an SPF record's syntax (see records.h). */
int sp_spf_parse(const char *txt, struct sp_spf *out, char *err,
                 size_t errlen) {
  static const char *const lookups[] = {"include", "a",      "mx",
                                        "ptr",     "exists", NULL};
  static const char *const others[] = {"all", "ip4", "ip6", NULL};
  memset(out, 0, sizeof(*out));
  const char *end = txt ? record_end(txt) : NULL;
  if (!end)
    return refuse(err, errlen, "no record, or longer than %d bytes",
                  SP_RECORD_MAX);
  out->length = (size_t)(end - txt);
  if (strncasecmp(txt, "v=spf1", 6) != 0 || (txt[6] != ' ' && txt[6] != '\0'))
    return refuse(err, errlen, "does not start with v=spf1");
  bool have_exp = false;
  const char *p = txt + 6;
  while (p < end) {
    while (p < end && *p == ' ')
      p++;
    if (p >= end)
      break;
    const char *te = p;
    while (te < end && *te != ' ')
      te++;
    char term[256];
    size_t tl = (size_t)(te - p);
    if (tl >= sizeof(term))
      return refuse(err, errlen, "a term longer than %zu bytes",
                    sizeof(term) - 1);
    memcpy(term, p, tl);
    term[tl] = '\0';
    p = te;
    char *eq = strchr(term, '=');
    char *colon = strpbrk(term, ":/");
    if (eq && (!colon || eq < colon)) { /* a modifier name=value */
      *eq = '\0';
      if (strcasecmp(term, "redirect") == 0) {
        if (out->has_redirect)
          return refuse(err, errlen, "redirect= given twice");
        out->has_redirect = true;
        out->lookups++;
      } else if (strcasecmp(term, "exp") == 0) {
        if (have_exp)
          return refuse(err, errlen, "exp= given twice");
        have_exp = true;
      }
      continue; /* unknown modifiers are ignored (§6) */
    }
    const char *mech = term;
    char q = '+';
    if (strchr("+-~?", *mech)) {
      q = *mech;
      mech++;
    }
    size_t ml = strcspn(mech, ":/");
    bool known = false;
    for (int i = 0; lookups[i]; i++)
      if (strlen(lookups[i]) == ml && strncasecmp(mech, lookups[i], ml) == 0) {
        known = true;
        out->lookups++;
        if (ml == 3 && strncasecmp(mech, "ptr", 3) == 0)
          out->has_ptr = true;
      }
    for (int i = 0; !known && others[i]; i++)
      if (strlen(others[i]) == ml && strncasecmp(mech, others[i], ml) == 0)
        known = true;
    if (!known)
      return refuse(err, errlen, "unknown mechanism \"%.40s\"", term);
    if (ml == 3 && strncasecmp(mech, "all", 3) == 0) {
      out->all_pass = q == '+';
      out->all_neutral = q == '?';
    }
  }
  return 0;
}

/* ---- DKIM keys (RFC 6376 §3.6.1) ---------------------------------------- */

/* Parse a DKIM key record (see records.h). */
int sp_dkim_key_parse(const char *txt, struct sp_dkim_key *out, char *err,
                      size_t errlen) {
  memset(out, 0, sizeof(*out));
  sp_strlcpy(out->k, "rsa", sizeof(out->k));
  const char *end = txt ? record_end(txt) : NULL;
  if (!end)
    return refuse(err, errlen, "no record, or longer than %d bytes",
                  SP_RECORD_MAX);
  const char *p = txt;
  char name[32], value[SP_RECORD_MAX + 1];
  bool have_p = false, first = true;
  int r;
  char pkey[SP_RECORD_MAX + 1] = "";
  while ((r = next_tag(&p, end, name, sizeof(name), value, sizeof(value))) ==
         1) {
    if (strcmp(name, "v") == 0 && (!first || strcmp(value, "DKIM1") != 0))
      return refuse(err, errlen, "v= must come first and be DKIM1");
    first = false;
    if (strcmp(name, "k") == 0) {
      if (strcmp(value, "rsa") != 0 && strcmp(value, "ed25519") != 0)
        return refuse(err, errlen, "k=%.20s is not rsa or ed25519", value);
      sp_strlcpy(out->k, value, sizeof(out->k));
    } else if (strcmp(name, "p") == 0) {
      size_t o = 0; /* base64 may be split by white space */
      for (const char *c = value; *c && o + 1 < sizeof(pkey); c++)
        if (*c != ' ' && *c != '\t')
          pkey[o++] = *c;
      pkey[o] = '\0';
      have_p = true;
    }
  }
  if (r < 0)
    return refuse(err, errlen, "malformed tag list");
  if (!have_p)
    return refuse(err, errlen, "no p= (it is required)");
  if (pkey[0] == '\0') {
    out->revoked = true;
    return 0;
  }
  unsigned char der[SP_RECORD_MAX];
  int n = sp_b64_decode(pkey, der, sizeof(der));
  if (n <= 0)
    return refuse(err, errlen, "p= is not base64");
  EVP_PKEY *key = NULL;
  if (strcmp(out->k, "ed25519") == 0)
    key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, (size_t)n);
  else {
    const unsigned char *q = der;
    key = d2i_PUBKEY(NULL, &q, n);
  }
  if (!key)
    return refuse(err, errlen, "p= holds no %s public key", out->k);
  out->bits = EVP_PKEY_bits(key);
  EVP_PKEY_free(key);
  return 0;
}
