/*
 * records.h - parsers of the mail-domain records and the MTA-STS policy
 * (records.c): the building blocks of the mail-domain mode (issue 14).
 * Every parser takes text that came from DNS or HTTPS, reads it under a
 * cap, never trusts it, and says in err why a record does not count.
 * Internal to common/ (and its tests); adapters include smtp_probe.h.
 */
#ifndef SP_RECORDS_H
#define SP_RECORDS_H

#include <stdbool.h>
#include <stddef.h>

#define SP_STS_MAX_MX 16         /* mx patterns kept from one policy */
#define SP_STS_MAX_BODY 65536    /* bytes of a policy file read at most */
#define SP_STS_MAX_AGE 31557600L /* RFC 8461 §3.2: max_age at most a year */
#define SP_RECORD_MAX 4096       /* bytes of one TXT record read at most */
#define SP_RPT_MAX_URIS 8        /* TLS-RPT / DMARC report URIs kept */

/* An MTA-STS policy mode (RFC 8461 §3.2). */
enum sp_sts_mode {
  SP_STS_NONE,    /* "none": the domain withdraws its policy */
  SP_STS_TESTING, /* "testing": senders deliver anyway and report */
  SP_STS_ENFORCE  /* "enforce": senders refuse MX hosts that fail */
};

/* An MTA-STS policy file, parsed. */
struct sp_sts_policy {
  enum sp_sts_mode mode;       /* its mode */
  long max_age;                /* seconds (0..SP_STS_MAX_AGE) */
  char mx[SP_STS_MAX_MX][256]; /* the mx patterns, as written */
  int nmx;                     /* how many */
};

/* Check an MTA-STS TXT record (`_mta-sts.DOMAIN`): it must start
 * "v=STSv1" and carry id= of 1-32 letters and digits; id gets the id.
 * 0, or -1 with err. */
int sp_sts_txt_parse(const char *txt, char *id, size_t idlen, char *err,
                     size_t errlen);

/* Parse an MTA-STS policy body (len bytes, at most SP_STS_MAX_BODY):
 * "key: value" lines (CRLF or LF), version STSv1, a mode, max_age, and mx
 * lines (required unless the mode is none). 0, or -1 with err. */
int sp_sts_policy_parse(const char *body, size_t len, struct sp_sts_policy *out,
                        char *err, size_t errlen);

/* Whether an MX host name matches an mx pattern (RFC 8461 §4.1): the
 * whole name (anchored, any case, a trailing dot ignored); "*." matches
 * exactly one left-most label, never several, never none. */
bool sp_sts_mx_match(const char *pattern, const char *host);

/* A TLS-RPT record (`_smtp._tls.DOMAIN`, RFC 8460 §3), parsed. */
struct sp_tlsrpt {
  char rua[SP_RPT_MAX_URIS][256]; /* report URIs (mailto: or https:) */
  int nrua;                       /* how many */
};

/* Parse a TLS-RPT record: "v=TLSRPTv1" first, rua= with one or more
 * comma-separated mailto: or https: URIs. 0, or -1 with err. */
int sp_tlsrpt_parse(const char *txt, struct sp_tlsrpt *out, char *err,
                    size_t errlen);

/* A DMARC policy (p= and sp=, RFC 7489 §6.3). */
enum sp_dmarc_policy {
  SP_DMARC_NONE,       /* monitor only */
  SP_DMARC_QUARANTINE, /* treat failing mail as suspicious */
  SP_DMARC_REJECT      /* refuse failing mail */
};

/* A DMARC record (`_dmarc.DOMAIN`), parsed. */
struct sp_dmarc {
  enum sp_dmarc_policy p;         /* p=, required */
  enum sp_dmarc_policy sp;        /* sp=, p's when absent */
  bool strict_dkim;               /* adkim=s */
  bool strict_spf;                /* aspf=s */
  int pct;                        /* pct=, 100 when absent */
  char rua[SP_RPT_MAX_URIS][256]; /* aggregate report URIs */
  int nrua;                       /* how many */
};

/* Parse a DMARC record: "v=DMARC1" first, p= required; known tags
 * checked (sp, adkim, aspf, pct, rua, ruf, fo, rf, ri, np, psd, t),
 * unknown ones ignored as RFC 7489 says. 0, or -1 with err. */
int sp_dmarc_parse(const char *txt, struct sp_dmarc *out, char *err,
                   size_t errlen);

/* An SPF record (RFC 7208), checked on its own (includes are not
 * followed here: lookups counts this record's DNS-querying terms). */
struct sp_spf {
  int lookups;       /* include, a, mx, ptr, exists, redirect terms */
  bool all_pass;     /* ends in "+all" or "all" (anyone may send) */
  bool all_neutral;  /* "?all" */
  bool has_ptr;      /* uses ptr (RFC 7208 §5.5: SHOULD NOT) */
  bool has_redirect; /* a redirect= modifier */
  size_t length;     /* bytes of the record */
};

/* Check an SPF record's syntax: "v=spf1" then terms (mechanisms with an
 * optional qualifier, modifiers name=value). 0, or -1 with err (a
 * permerror: an unknown mechanism, a bad qualifier, a repeated
 * modifier). */
int sp_spf_parse(const char *txt, struct sp_spf *out, char *err, size_t errlen);

/* A DKIM key record (`SELECTOR._domainkey.DOMAIN`, RFC 6376 §3.6.1). */
struct sp_dkim_key {
  bool revoked; /* p= is empty */
  char k[16];   /* key type: "rsa" (default) or "ed25519" */
  int bits;     /* the key's size, 0 when revoked or unreadable */
};

/* Parse a DKIM key record and read its public key's size (OpenSSL).
 * 0, or -1 with err. */
int sp_dkim_key_parse(const char *txt, struct sp_dkim_key *out, char *err,
                      size_t errlen);

#endif /* SP_RECORDS_H */
