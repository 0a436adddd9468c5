/*
 * smtp_probe.h - the one public header of the smtp-probe core library.
 *
 * It defines the request (what to probe and how), the result (what was
 * found, phase by phase), the phase names, the diagnosis codes with their
 * hints, the role x code -> state table, and the engine that runs many
 * probes at once in one non-blocking event loop.
 *
 * Adapters (nagios/, collectd/, prometheus/) include this header only;
 * it brings in sp_buf.h, the capped text/byte buffer they build output in.
 */
#ifndef SMTP_PROBE_H
#define SMTP_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "sp_buf.h" /* struct sp_buf, the capped buffer of the whole tree */

#ifdef __cplusplus
extern "C" {
#endif

#define SP_VERSION "0.1.0"

/* ---- Caps: every read and every buffer has one ---------------------- */

#define SP_MAX_LINE 1024          /* bytes in one reply line (RFC 5321: 512) */
#define SP_MAX_REPLY_LINES 128    /* lines in one multi-line reply */
#define SP_MAX_REPLY_BYTES 16384  /* bytes in one whole reply */
#define SP_MAX_PROBE_BUFFER 32768 /* bytes buffered per probe, all in */
#define SP_MAX_TRANSCRIPT 16384   /* bytes of dialogue kept per probe */
#define SP_MAX_PORTS 16           /* ports in one request */
#define SP_MAX_ADDRESSES 8        /* resolved addresses kept per host */
#define SP_MAX_CERTS 8            /* certificates recorded per chain */
#define SP_MAX_HOST 256           /* host name, with its NUL */
#define SP_MAX_TEXT 256           /* sanitised detail / reply text */
#define SP_MAX_SECRET 512         /* bytes in a password or bearer token */

/* ---- Phases ---------------------------------------------------------- */

/* The timed steps of one probe; names are a contract shared by adapters. */
enum sp_phase {
  SP_PHASE_DNS,           /* name resolution (not done for IP literals) */
  SP_PHASE_CONNECT,       /* TCP connect */
  SP_PHASE_BANNER,        /* wait for the 220 greeting */
  SP_PHASE_EHLO,          /* EHLO (or HELO fallback) before TLS */
  SP_PHASE_STARTTLS,      /* STARTTLS command and its reply */
  SP_PHASE_TLS_HANDSHAKE, /* TLS handshake (STARTTLS or implicit) */
  SP_PHASE_EHLO_TLS,      /* EHLO inside TLS */
  SP_PHASE_AUTH,          /* AUTH */
  SP_PHASE_MAIL_FROM,     /* MAIL FROM trial */
  SP_PHASE_RCPT_TO,       /* RCPT TO trial */
  SP_PHASE_TOTAL,         /* start of probe to its end */
  SP_PHASE_COUNT
};

/* The phase's name: "dns", "connect", ... "total". */
const char *sp_phase_name(enum sp_phase phase);

/* ---- Diagnosis codes ------------------------------------------------- */

/* How a probe ended: exactly one per result. Words are a contract. */
enum sp_code {
  SP_OK,
  SP_DNS_ERROR,
  SP_CONNECT_REFUSED,
  SP_CONNECT_TIMEOUT,
  SP_NETWORK_UNREACHABLE,
  SP_CONNECTION_CLOSED,
  SP_BANNER_TIMEOUT,
  SP_READ_TIMEOUT,
  SP_REJECTED,
  SP_DEFERRED,
  SP_PROTOCOL_ERROR,
  SP_TLS_MODE_MISMATCH,
  SP_STARTTLS_UNAVAILABLE,
  SP_TLS_HANDSHAKE_FAILED,
  SP_TLS_WEAK_PROTOCOL,
  SP_CERT_UNTRUSTED,
  SP_CERT_HOSTNAME_MISMATCH,
  SP_CERT_EXPIRED,
  SP_CERT_EXPIRING,
  SP_AUTH_BEFORE_TLS,
  SP_AUTH_UNAVAILABLE,
  SP_AUTH_FAILED,
  SP_STARTTLS_INJECTION,
  SP_POLICY_VIOLATION,
  /* Mail-domain codes (issue 14), scope domain; made by the domain mode. */
  SP_DNSSEC_BOGUS,
  SP_DANE_MISMATCH,
  SP_DANE_UNUSABLE,
  SP_MTA_STS_POLICY_ERROR,
  SP_MTA_STS_MX_MISMATCH,
  SP_TLS_RPT_INVALID,
  SP_SPF_MISSING,
  SP_SPF_INVALID,
  SP_DMARC_MISSING,
  SP_DMARC_INVALID,
  SP_DKIM_MISSING,
  SP_DKIM_INVALID,
  /* Round-trip codes (issue 16), scope round_trip. */
  SP_DELIVERY_TIMEOUT,
  SP_BOUNCED,
  SP_DELIVERY_DELAYED,
  SP_DELIVERED_TO_JUNK,
  SP_DKIM_VERIFY_FAILED,
  SP_AUTHRES_FAILED,
  SP_HOP_WITHOUT_TLS,
  SP_MAILBOX_UNREACHABLE,
  SP_MAILBOX_AUTH_FAILED,
  SP_CODE_COUNT
};

/* What a code is about: the next codes (mail domains, round trips) are
 * rows of the same table, with a scope of their own. */
enum sp_code_scope {
  SP_SCOPE_PORT,      /* one host:port probe */
  SP_SCOPE_DOMAIN,    /* a mail domain (MX set, DANE, MTA-STS, records) */
  SP_SCOPE_ROUND_TRIP /* a test message's round trip */
};

/* A set of codes, of any size (a result's findings). */
struct sp_code_set {
  uint64_t bits[(SP_CODE_COUNT + 63) / 64]; /* bit c: code c is in */
};

/* Add a code to a set. */
void sp_code_set_add(struct sp_code_set *set, enum sp_code code);

/* Whether a code is in a set. */
bool sp_code_set_has(const struct sp_code_set *set, enum sp_code code);

/* The code's scope. */
enum sp_code_scope sp_code_scope(enum sp_code code);

/* The scope's word: "port", "domain", "round_trip". */
const char *sp_code_scope_name(enum sp_code_scope scope);

/* The code's word: "ok", "dns_error", ... */
const char *sp_code_name(enum sp_code code);

/* The code's generic one-line hint: what to check first. */
const char *sp_code_hint(enum sp_code code);

/* Parse a code word; returns -1 when it is not one. */
int sp_code_from_name(const char *name);

/* ---- Roles, TLS modes, states ---------------------------------------- */

/* What a port is for; decides how a code maps to a state. */
enum sp_role {
  SP_ROLE_DEFAULT,    /* derive from the port number (sp_role_for_port) */
  SP_ROLE_SUBMISSION, /* 587, 2525: STARTTLS required, AUTH expected */
  SP_ROLE_IMPLICIT,   /* 465: TLS from the first byte */
  SP_ROLE_RELAY       /* 25: server to server, opportunistic TLS */
};

/* How to get to TLS. */
enum sp_tls_mode {
  SP_TLS_AUTO,     /* implicit role: implicit; else STARTTLS when advertised */
  SP_TLS_NONE,     /* plaintext only, never TLS */
  SP_TLS_STARTTLS, /* STARTTLS required */
  SP_TLS_IMPLICIT  /* TLS from the first byte */
};

/* Monitoring state, numbered as Nagios exit codes. */
enum sp_state {
  SP_STATE_OK = 0,
  SP_STATE_WARNING = 1,
  SP_STATE_CRITICAL = 2,
  SP_STATE_UNKNOWN = 3
};

const char *sp_role_name(enum sp_role role); /* "submission", ... */
int sp_role_from_name(const char *name);     /* "default" too; -1 if unknown */

/* A TLS version word ("1.2", "TLSv1.2", "TLS12", any case) as its protocol
 * number (0x0303); 0 when it is not one. One grammar everywhere. */
int sp_tls_version_from_name(const char *name);

/* The canonical spelling of an AUTH mechanism we speak (PLAIN, LOGIN,
 * CRAM-MD5, XOAUTH2; any case in), or NULL. One list everywhere. */
const char *sp_auth_mech_canonical(const char *name);
const char *sp_tls_mode_name(enum sp_tls_mode mode); /* "auto", ... */
int sp_tls_mode_from_name(const char *name);         /* -1 if unknown */
const char *sp_state_name(enum sp_state state);      /* "OK", "WARNING", ... */

/* The role a port number has when none is given: 465 implicit, 25 relay,
 * everything else submission. */
enum sp_role sp_role_for_port(uint16_t port);

/* The role x code -> state table (documented in README). */
enum sp_state sp_code_state(enum sp_code code, enum sp_role role);

/* The state of a code under an MTA-STS mode (testing softens the policy
 * codes to WARNING); otherwise sp_code_state's. */
enum sp_state sp_code_state_sts(enum sp_code code, enum sp_role role,
                                bool testing);

/* True for codes that mean "no answer in time or no route": the ones a
 * Nagios -t SECONDS:STATE re-maps (dns_error, connect_timeout,
 * network_unreachable, banner_timeout, read_timeout). */
bool sp_code_is_timeout(enum sp_code code);

/* ---- Request --------------------------------------------------------- */

/* A PROXY protocol header sent first on every connection (HAProxy's
 * proxy-protocol.txt), for servers behind a load balancer. */
enum sp_proxy {
  SP_PROXY_NONE, /* no header */
  SP_PROXY_V1,   /* "PROXY TCP4 src dst sport dport\r\n" */
  SP_PROXY_V2    /* the binary header */
};

/* Address families to use. */
enum sp_family {
  SP_FAMILY_ANY, /* IPv4 and IPv6 */
  SP_FAMILY_IPV4,
  SP_FAMILY_IPV6
};

/* One port to probe and how. */
struct sp_port_spec {
  uint16_t port;             /* TCP port */
  enum sp_role role;         /* SP_ROLE_DEFAULT: from the port number */
  enum sp_tls_mode tls_mode; /* TLS mode for this port */
};

/* What to probe: one host, one or more ports, shared options. The engine
 * copies everything it needs at submit time; strings may be freed after. */
struct sp_request {
  const char *host;                        /* name or IP literal */
  struct sp_port_spec ports[SP_MAX_PORTS]; /* ports to probe in parallel */
  int nports;                              /* how many of ports[] are used */
  enum sp_tls_mode tls_mode; /* for every port whose own mode is auto */
  enum sp_role role;         /* for every port whose own role is default */
  const char *sni;           /* SNI and verify name; NULL: host unless IP */
  const char *cafile;        /* trust anchors; NULL: the system store */
  bool no_verify;            /* skip chain and hostname verification */
  const char *ehlo_name;     /* EHLO argument; NULL: the local FQDN */
  enum sp_family family;     /* -4 / -6 */
  bool all_addresses;        /* one result per resolved address */
  const char *source;        /* local address to bind, NULL: any */
  double timeout_s;          /* whole-probe deadline, seconds (> 0) */
  double banner_wait_s;      /* greeting wait before trying implicit TLS;
                                <= 0: min(2 s, timeout/3) */
  const char *dns_server;    /* resolver ADDR[:PORT]; NULL: system's */
  int cert_warn_days;        /* cert_expiring below this; < 0: off */
  int cert_crit_days;        /* cert_expiring is CRITICAL below this */
  bool trace;                /* keep the (sanitised) dialogue */

  /* Authentication, submission trial and posture checks. */
  const char *auth_user;        /* AUTH identity; NULL: no AUTH attempted */
  const char *auth_secret;      /* password or bearer token: never logged,
                                   never sent without TLS (sp_secret_load) */
  const char *auth_mech;        /* PLAIN, LOGIN, CRAM-MD5 or XOAUTH2;
                                   NULL: the strongest both sides support */
  const char *mail_from;        /* MAIL FROM trial address; NULL: none */
  const char *rcpt_to;          /* RCPT TO trial address (needs mail_from) */
  bool send_message;            /* also send a small test message (DATA) */
  bool check_injection;         /* STARTTLS command-injection test, on a
                                   connection of its own (opt-in) */
  bool no_tls_trial;            /* never send a TLS hello to a port that has
                                   not greeted (the implicit-TLS trial) */
  enum sp_proxy proxy_protocol; /* PROXY header first on every connection,
                                   with the real socket addresses */
  const char *client_cert; /* TLS client certificate chain (PEM), or NULL */
  const char *client_key;  /* its private key (PEM; a secret file, see
                              sp_secret_file_warning), with client_cert */
  int min_tls_version;     /* e.g. 0x0303 for TLS 1.2; a session below it
                            is tls_weak_protocol; 0: TLS 1.2 */
  const char *provider;    /* a provider preset's key (sp_request_set
                              "provider"): the batch is checked against
                              its documentation; NULL: none */

  /* Optional guard run on the engine thread before every connect: an
   * address it refuses is skipped, and a probe left with none ends as
   * policy_violation ("address not allowed"). The exporter uses it to
   * keep resolved names inside its allowed networks. */
  bool (*allow_address)(const struct sockaddr *addr, void *ctx);
  void *allow_ctx; /* passed to allow_address; must outlive the probe */
};

/* Fill a request with defaults: auto TLS, 10 s, verification on. */
void sp_request_init(struct sp_request *req);

/* Add a port with its default role and the given TLS mode; -1 when full. */
int sp_request_add_port(struct sp_request *req, uint16_t port,
                        enum sp_tls_mode mode, enum sp_role role);

/* Check a request; on error write a message naming the field, return -1. */
int sp_request_validate(const struct sp_request *req, char *err, size_t errlen);

/* ---- Submission service discovery (srv.c; RFC 6186, RFC 8314) ------- */

#define SP_SRV_MAX 8 /* SRV records kept per service */

/* One SRV record. */
struct sp_srv_record {
  char target[SP_MAX_HOST]; /* the host it names (sanitised) */
  uint16_t port;            /* its port */
  uint16_t priority;        /* lower first */
  uint16_t weight;          /* higher first among equal priorities */
};

/* What one service's lookup found. */
struct sp_srv_service {
  struct sp_srv_record rec[SP_SRV_MAX]; /* its records */
  int n;                                /* how many */
  bool none;                            /* a "." target: not offered */
  bool missing;                         /* no record (NXDOMAIN, no data) */
  char error[SP_MAX_TEXT];              /* why the lookup failed, or "" */
};

/* Both submission services of a domain. */
struct sp_srv_set {
  char domain[SP_MAX_HOST];          /* the domain the user gave */
  struct sp_srv_service submissions; /* _submissions._tcp: implicit TLS */
  struct sp_srv_service submission;  /* _submission._tcp: STARTTLS */
};

/* Look up _submissions._tcp.DOMAIN and _submission._tcp.DOMAIN through
 * dns_server (NULL: the system's), within timeout_s. 0 (each service says
 * what it found), or -1 with err (a bad domain or resolver). */
int sp_srv_lookup(const char *domain, const char *dns_server, double timeout_s,
                  struct sp_srv_set *out, char *err, size_t errlen);

/* The best record of a service (lowest priority, highest weight), or NULL. */
const struct sp_srv_record *sp_srv_best(const struct sp_srv_service *svc);

/* Point req at what the records name: the implicit-TLS service first
 * (RFC 8314 §5.1), the STARTTLS one beside it when it is the same host;
 * SNI and verify name the user's domain (RFC 6186 §6), unless req->sni is
 * set. req->host points into set. 0 ready (note may say what was left
 * out), 1 the domain publishes no service ("." targets), -1 nothing to
 * probe or a failed lookup; err says why. */
int sp_srv_request(const struct sp_srv_set *set, struct sp_request *req,
                   char *note, size_t notelen, char *err, size_t errlen);

/* What to warn about in a valid request (every adapter logs it once at
 * load): a client_key file that group or others can read (the one rule
 * for secret files). warn is "" when there is nothing. */
void sp_request_warnings(const struct sp_request *req, char *warn,
                         size_t warnlen);

/* ---- The option vocabulary (options.c) ------------------------------- */

/* How an option's value is written (one grammar per kind, everywhere). */
enum sp_opt_grammar {
  SP_GRAM_BOOL,        /* true/false, yes/no, on/off, 1/0 */
  SP_GRAM_SECONDS,     /* seconds ("2.5") or a duration ("500ms", "1m30s") */
  SP_GRAM_PORTS,       /* ports 1-65535, comma or space separated */
  SP_GRAM_TLS_MODE,    /* auto, none, starttls, implicit */
  SP_GRAM_TLS_VERSION, /* 1.0-1.3 (also TLSv1.2, TLS12) */
  SP_GRAM_ROLE,        /* default, submission, implicit, relay */
  SP_GRAM_FAMILY,      /* any, ipv4, ipv6 (also 4/6, ip4/ip6) */
  SP_GRAM_MECH,        /* PLAIN, LOGIN, CRAM-MD5, XOAUTH2 */
  SP_GRAM_HOST,        /* host name or IP literal */
  SP_GRAM_IP,          /* IP address */
  SP_GRAM_IP_PORT,     /* IP[:PORT], [IPv6]:PORT */
  SP_GRAM_PATH,        /* a file */
  SP_GRAM_TEXT,        /* printable, no spaces (an address, a user) */
  SP_GRAM_INT,         /* a whole number within [min, max] */
  SP_GRAM_PROXY,       /* none, v1, v2 */
  SP_GRAM_NAME         /* a name: letters, digits, '-', '.' (a provider) */
};

/* One probe option: the row of the table every adapter spells. */
struct sp_option {
  const char *key;             /* canonical key: "min_tls" */
  enum sp_opt_grammar grammar; /* how its value is written */
  long min, max;               /* bounds: INT value, SECONDS, TEXT length */
  const char *def;             /* the default, as help texts say it */
  const char *doc;             /* one line: what it does */
};

/* The i-th option of the table, NULL past the end. */
const struct sp_option *sp_option_at(size_t i);

/* The option with this canonical key, or NULL. */
const struct sp_option *sp_option_find(const char *key);

/* Parse value (text) by the key's grammar and set the request field.
 * Strings are stored by pointer: value must outlive the request. "ports"
 * appends (repeats ignored); "tls" and "role" apply to every port whose
 * own is auto/default. On error err gets one sentence without the key
 * (the adapter puts its spelling of the key in front); returns -1. */
int sp_request_set(struct sp_request *req, const char *key, const char *value,
                   char *err, size_t errlen);

/* The grammars, for adapters whose values come typed: 0 or -1. */
int sp_parse_bool(const char *s, bool *out);
int sp_parse_seconds(const char *s, double *out);

/* An address family word as enum sp_family, or -1. */
int sp_family_from_name(const char *name);

/* ---- App settings (app_settings.c) ------------------------------------ */

/* Whose settings are checked: the same URL means different things in
 * each (Symfony's smtp://host:465 is implicit TLS, nodemailer's is not). */
enum sp_app_framework {
  SP_APP_GENERIC,    /* URLs as curl reads them: smtp://, smtps:// */
  SP_APP_SYMFONY,    /* Symfony Mailer DSN (MAILER_DSN) */
  SP_APP_LARAVEL,    /* Laravel MAIL_* (Symfony Mailer underneath) */
  SP_APP_NODEMAILER, /* nodemailer transport options */
  SP_APP_DJANGO,     /* Django EMAIL_* settings */
  SP_APP_SPRING,     /* Spring Boot spring.mail.* / JavaMail mail.smtp.* */
  SP_APP_FRAMEWORK_COUNT
};

/* What an app's settings make it do about TLS. */
enum sp_app_tls {
  SP_APP_TLS_PLAIN,         /* never TLS */
  SP_APP_TLS_OPPORTUNISTIC, /* STARTTLS when offered, else plaintext */
  SP_APP_TLS_STARTTLS,      /* STARTTLS required */
  SP_APP_TLS_IMPLICIT       /* TLS from the first byte */
};

/* Where a setting came from: a password is refused on the command line. */
enum sp_app_source {
  SP_APP_FROM_ARGV, /* --app-url, --app-setting */
  SP_APP_FROM_FILE  /* --app-settings-file */
};

/* The app's mail settings, as given (sp_app_set*) and resolved
 * (sp_app_finish). The secret is never part of any text. */
struct sp_app_settings {
  enum sp_app_framework framework; /* whose rules read the settings */
  char host[SP_MAX_HOST];          /* the host, or "" when not given */
  uint16_t port;                   /* the port; 0 until given or resolved */
  bool port_default;               /* the port is the framework's default */
  char user[SP_MAX_TEXT];          /* the AUTH user, or "" */
  char secret[SP_MAX_SECRET];      /* a password (from a file only) */
  bool has_secret;                 /* secret was set */
  char scheme[12];                 /* URL scheme as given ("smtps"), or "" */
  char protocol[12];               /* Spring's protocol (smtp, smtps), or "" */
  int use_tls;            /* STARTTLS switch (EMAIL_USE_TLS, starttls.enable,
                             encryption=tls): 1 on, 0 off, -1 unset */
  int use_ssl;            /* implicit-TLS switch (EMAIL_USE_SSL, secure,
                             ssl.enable): 1 on, 0 off, -1 unset */
  int require_tls;        /* STARTTLS required (requireTLS, starttls.required,
                             require_tls): 1, 0, -1 unset */
  int ignore_tls;         /* STARTTLS never (ignoreTLS, auto_tls=false,
                             starttls=false): 1, 0, -1 unset */
  char tls_said[64];      /* the setting behind use_tls as written */
  char ssl_said[64];      /* the setting behind use_ssl as written */
  char req_said[64];      /* the setting behind require_tls as written */
  char ign_said[64];      /* the setting behind ignore_tls as written */
  char enc_said[64];      /* Laravel's MAIL_ENCRYPTION as written, or "" */
  char ignored[64];       /* a TLS-looking option the framework ignores */
  int nset;               /* settings taken so far */
  enum sp_app_tls tls;    /* what the app does (sp_app_finish) */
  char said[SP_MAX_TEXT]; /* the settings that decide tls, in the
                             framework's words ("EMAIL_USE_TLS=True") */
};

struct sp_result;

/* What the probe says of settings against the server. */
struct sp_app_verdict {
  bool known;              /* the probe told what the server speaks */
  bool fits;               /* the settings can work with it */
  bool mismatch;           /* the TLS modes differ: tls_mode_mismatch */
  enum sp_tls_mode server; /* the server speaks: none (no STARTTLS),
                              starttls, implicit; auto when unknown */
  char text[SP_MAX_TEXT];  /* the sentence, in the framework's words */
};

/* The framework's word ("symfony"), and back (-1 when unknown). */
const char *sp_app_framework_name(enum sp_app_framework fw);
int sp_app_framework_from_name(const char *name);

/* The app TLS mode's word: "plaintext", "starttls-if-offered", ... */
const char *sp_app_tls_name(enum sp_app_tls tls);

/* Empty settings for a framework. */
void sp_app_init(struct sp_app_settings *s, enum sp_app_framework fw);

/* Take a URL (smtp://user@host:587?opt=v). A password in it is refused
 * from argv (never echoed) and kept as the secret from a file. Returns 0,
 * or -1 with one sentence in err (the URL is never quoted). */
int sp_app_set_url(struct sp_app_settings *s, const char *url,
                   enum sp_app_source src, char *err, size_t errlen);

/* Take one KEY=VALUE setting of the framework (a URL value such as
 * MAILER_DSN= is read by sp_app_set_url). A password key is refused from
 * argv; from a file an unknown key is skipped (returns 0), from argv it is
 * an error. Returns 0 or -1 with err (a secret's value never in it). */
int sp_app_set(struct sp_app_settings *s, const char *key, const char *value,
               enum sp_app_source src, char *err, size_t errlen);

/* Take one line: KEY=VALUE, KEY: VALUE, KEY = 'VALUE', "export KEY=V",
 * or a bare URL; comments (#, //) and blank lines are skipped. */
int sp_app_set_line(struct sp_app_settings *s, const char *line,
                    enum sp_app_source src, char *err, size_t errlen);

/* Read a settings file (lines as sp_app_set_line; at most 64 KiB); err
 * names the line. The file's permissions follow sp_secret_file_warning. */
int sp_app_load_file(struct sp_app_settings *s, const char *path, char *err,
                     size_t errlen);

/* Resolve the TLS mode, the default port and the "said" words by the
 * framework's rules; -1 with err for contradictory settings. */
int sp_app_finish(struct sp_app_settings *s, char *err, size_t errlen);

/* The TLS mode to probe the settings' port with: implicit for implicit
 * settings, else STARTTLS (whose implicit-TLS trial tells an implicit
 * server apart). */
enum sp_tls_mode sp_app_probe_mode(const struct sp_app_settings *s);

/* Compare the settings with what the probe of their port found. */
void sp_app_verdict(const struct sp_app_settings *s,
                    const struct sp_result *res, struct sp_app_verdict *out);

/* Apply a verdict to its result: a mismatch becomes tls_mode_mismatch
 * with the verdict as its detail (state by the role); another failure
 * gets the verdict in front of its detail; an ok result is left alone. */
void sp_app_apply(const struct sp_app_verdict *v, struct sp_result *res);

/* Wipe the secret. */
void sp_app_wipe(struct sp_app_settings *s);

/* ---- Result ---------------------------------------------------------- */

/* SMTP service extensions seen in one EHLO reply. */
enum sp_cap_flag {
  SP_CAP_SIZE = 1u << 0,
  SP_CAP_PIPELINING = 1u << 1,
  SP_CAP_8BITMIME = 1u << 2,
  SP_CAP_SMTPUTF8 = 1u << 3,
  SP_CAP_CHUNKING = 1u << 4,
  SP_CAP_DSN = 1u << 5,
  SP_CAP_ENHANCEDSTATUSCODES = 1u << 6,
  SP_CAP_REQUIRETLS = 1u << 7,
  SP_CAP_STARTTLS = 1u << 8,
  SP_CAP_AUTH = 1u << 9
};

/* Capability list parsed from one EHLO reply. */
struct sp_caps {
  bool seen;                     /* an EHLO reply was parsed */
  unsigned flags;                /* enum sp_cap_flag bits */
  uint64_t size_limit;           /* SIZE value; 0 when absent or unlimited */
  char auth_mechs[128];          /* AUTH mechanisms, space separated */
  char ehlo_domain[SP_MAX_TEXT]; /* the server's name in the first line */
};

/* One certificate the server sent. */
struct sp_cert {
  char subject[SP_MAX_TEXT]; /* RFC 2253 one-line subject, sanitised */
  char issuer[SP_MAX_TEXT];  /* RFC 2253 one-line issuer, sanitised */
  char sans[SP_MAX_TEXT];    /* DNS/IP subjectAltNames, comma separated */
  time_t not_after;          /* expiry, UTC seconds */
};

/* Everything one probe of one host:port[:address] found. */
struct sp_result {
  char host[SP_MAX_HOST];    /* the host as requested */
  uint16_t port;             /* the port probed */
  enum sp_role role;         /* effective role */
  enum sp_tls_mode tls_mode; /* requested mode */
  char address[64];          /* numeric address connected to, or "" */
  bool per_address;          /* part of an all_addresses request */

  enum sp_code code;           /* the diagnosis */
  enum sp_state state;         /* sp_code_state + cert thresholds */
  char detail[SP_MAX_TEXT];    /* specific detail: server reply, error text */
  char hint[SP_MAX_TEXT];      /* this result's own "what to check first",
                                  or "" for the code's (sp_result_check_first) */
  char software[16];           /* MTA the greeting or EHLO names ("Postfix",
                                  "Exim", "Haraka"), or "" */
  struct sp_code_set findings; /* every code observed */

  double phase_s[SP_PHASE_COUNT];  /* seconds per phase */
  bool phase_done[SP_PHASE_COUNT]; /* the phase happened */
  int reply_code[SP_PHASE_COUNT];  /* last reply code per phase, 0: none */

  bool tls;                       /* a TLS session was established */
  bool implicit_tls;              /* it was implicit TLS */
  char tls_version[16];           /* "TLSv1.3" */
  char tls_cipher[64];            /* "TLS_AES_256_GCM_SHA384" */
  bool verified;                  /* chain verification ran and passed */
  char verify_error[SP_MAX_TEXT]; /* first chain error text, or "" */
  int hostname_check;             /* 1 ok, 0 mismatch, -1 not verified */
  char verify_name[SP_MAX_HOST];  /* name (or IP) the cert was checked for */
  struct sp_cert *certs;          /* certificates the server sent, at most
                                     SP_MAX_CERTS (allocated: sp_batch_free frees) */
  int ncerts;                     /* how many certs[] holds */
  time_t leaf_not_after;          /* 0 when no certificate */
  time_t chain_not_after;         /* earliest not-after the server sent */

  struct sp_caps caps_plain; /* EHLO before TLS (not for implicit TLS) */
  struct sp_caps caps_tls;   /* EHLO inside TLS */

  char auth_mech[16];         /* mechanism used for AUTH, or "" */
  bool injection_tested;      /* the STARTTLS injection test ran */
  bool injection_vulnerable;  /* ... and the server answered injected data */
  bool client_cert_requested; /* the server asked for a client certificate */
  bool client_cert_sent;      /* ... and we had one to send */
  char message_id[128];       /* Message-ID of the test message, if sent */

  char *transcript;      /* sanitised dialogue when req->trace, or NULL */
  size_t transcript_len; /* bytes in transcript */
};

/* Read a secret (password or token) from the first line of file, or
 * when file is NULL from the environment variable envvar. A file that
 * group or others can read gives a warning in warn (may be empty).
 * Returns 0, or -1 with err naming the source (never the secret). */
int sp_secret_load(const char *file, const char *envvar, char *buf,
                   size_t buflen, char *warn, size_t warnlen, char *err,
                   size_t errlen);

/* The one rule for secret files (passwords, tokens, private keys): a
 * file that group or others can read gives a warning (chmod 600), written
 * to warn (empty when none). Returns 0, or -1 when the file cannot be
 * opened (err says why, never its content). */
int sp_secret_file_warning(const char *file, char *warn, size_t warnlen,
                           char *err, size_t errlen);

/* Whether a result counts as success in every adapter (collectd's
 * `success`, the exporter's smtp_probe_success): the diagnosis is ok.
 * A WARNING such as cert_expiring is not success; the state says how bad. */
bool sp_result_success(const struct sp_result *res);

/* What to check first for this result: its own hint when the probe made
 * one (e.g. naming the server's software or the offered mechanisms),
 * otherwise the code's generic hint. */
const char *sp_result_check_first(const struct sp_result *res);

/* Copy src to dst replacing bytes outside printable ASCII with '?';
 * always NUL-terminates; returns the length written. For any text that
 * came from outside (servers, HTTP clients) before it is shown. */
size_t sp_sanitize(char *dst, size_t dstlen, const char *src, size_t srclen);

/* Days until a time (negative once past), rounded down. */
long sp_days_left(time_t not_after, time_t now);

/* Write the human-readable long output block of one result (address, TLS,
 * certificates, capabilities, hint) into buf; verbose adds chain details.
 * Returns the length written (truncated to fit). */
size_t sp_result_describe(const struct sp_result *res, int verbose, char *buf,
                          size_t buflen);

/* The one-line hint for a result: its detail and its code's hint. */
size_t sp_result_hint(const struct sp_result *res, char *buf, size_t buflen);

/* ---- Port policy ----------------------------------------------------- */

/* A port policy per environment, loaded from YAML (format in policy.c and
 * README): per port, open or closed, TLS mode, AUTH only after TLS or
 * never, allowed mechanisms, lowest TLS version. */
struct sp_policy;
struct sp_batch;

/* One way a host deviates from its policy. */
struct sp_deviation {
  uint16_t port;            /* the port */
  char address[64];         /* the result's address (all_addresses), or "" */
  char rule[16];            /* state, tls, auth, mechanisms, min_tls */
  char detail[SP_MAX_TEXT]; /* what was found */
};

/* Load a policy; NULL with a message (file and line) in err. */
struct sp_policy *sp_policy_load(const char *path, char *err, size_t errlen);

/* Free a policy. */
void sp_policy_free(struct sp_policy *pol);

/* Add the policy's ports to a request, with the TLS mode each expects;
 * -1 when the request is full. */
int sp_policy_add_ports(const struct sp_policy *pol, struct sp_request *req);

/* Check a finished batch against the policy: write up to max deviations,
 * turn each deviating result into policy_violation (detail: the first
 * rule), and a port that is closed as expected into ok. Returns the
 * number of deviations written (at most max). */
int sp_policy_check(const struct sp_policy *pol, struct sp_batch *batch,
                    struct sp_deviation *out, int max);

/* The same for one result (an adapter that handles results one by one,
 * e.g. collectd): write up to max deviations of this result, mark it as
 * sp_policy_check does. Returns the number written; 0 when the policy has
 * no rule for its port. */
int sp_policy_check_result(const struct sp_policy *pol, struct sp_result *res,
                           struct sp_deviation *out, int max);

/* ---- Provider presets (providers.c, data/providers.yml) ------------- */

#define SP_PROVIDER_MAX_NAMES 12 /* hosts, domains, aliases per provider */

/* One provider's documented submission settings (a row of the table). */
struct sp_provider {
  char key[32];                            /* "gmail": what --provider takes */
  char name[64];                           /* "Gmail": what messages say */
  char aliases[SP_PROVIDER_MAX_NAMES][32]; /* other accepted names */
  int naliases;                            /* how many aliases[] */
  char host[SP_MAX_HOST];                  /* probed when no host is given */
  char hosts[SP_PROVIDER_MAX_NAMES][128];  /* its host names; "*": one label */
  int nhosts;                              /* how many hosts[] */
  char domains[SP_PROVIDER_MAX_NAMES][64]; /* hosts under these are its own */
  int ndomains;                            /* how many domains[] */
  char source[SP_MAX_TEXT];                /* the page the row comes from */
  char as_of[16];                          /* when that page was read */
  char unsure[1024];                       /* what is uncertain, or "" */
  struct sp_policy *policy;                /* the documented ports */
};

/* A table of providers (the built-in one, or one parsed for tests). */
struct sp_provider_set;

/* Parse a providers file's text (format in data/providers.yml); NULL with
 * a message (name and line) in err. */
struct sp_provider_set *sp_providers_parse(const char *text, size_t len,
                                           const char *name, char *err,
                                           size_t errlen);

/* Free a table. */
void sp_providers_free(struct sp_provider_set *set);

/* The i-th provider of a table, NULL past the end. */
const struct sp_provider *sp_providers_at(const struct sp_provider_set *set,
                                          size_t i);

/* The provider a name (key or alias, any case) stands for, or NULL. */
const struct sp_provider *sp_providers_find(const struct sp_provider_set *set,
                                            const char *name);

/* The provider a host name belongs to: one of its hosts first (any
 * provider), then one of its domains; NULL when none. */
const struct sp_provider *sp_providers_owner(const struct sp_provider_set *set,
                                             const char *host);

/* Whether host is prov's: 0 when it is, else 1 with why ("this host is
 * SendGrid's, not Gmail's" or "not one of Gmail's hosts (...)"). */
int sp_provider_host_check(const struct sp_provider_set *set,
                           const struct sp_provider *prov, const char *host,
                           char *why, size_t whylen);

/* The built-in table plus the user's file (SMTP_PROBE_PROVIDERS, else
 * /etc/smtp-probe/providers.yml when it exists), loaded once; NULL with
 * the loader's message when the user's file is broken. */
const struct sp_provider_set *sp_providers_builtin(char *err, size_t errlen);

/* Set a request to probe what a provider documents (the "provider"
 * option): its host when none is set, its ports with their TLS modes.
 * -1 with a sentence in err for an unknown name. */
int sp_request_set_provider(struct sp_request *req, const char *name, char *err,
                            size_t errlen);

/* Check a finished batch of a provider request against the provider's
 * documentation (the engine does it): each deviating result becomes
 * policy_violation with a detail naming the provider, and so does every
 * result when the host (or SNI) is not the provider's. */
void sp_provider_check_batch(const char *provider, const char *host,
                             struct sp_batch *batch);

/* ---- Engine ---------------------------------------------------------- */

/* All results of one submitted request. */
/* "Which port should this app use?", from the ports probed together
 * (recommend.c): 587 STARTTLS first, 465 implicit TLS next, 2525 only as
 * the fallback when 587 is blocked from here, never 25 (relay). */
struct sp_recommendation {
  bool has;                  /* a port to recommend (none: text says why) */
  uint16_t port;             /* it */
  enum sp_tls_mode tls_mode; /* with this TLS mode (starttls, implicit) */
  char text[SP_MAX_TEXT];    /* the sentence ("use 587 starttls (works);
                                465 implicit TLS also works"), or what to
                                check first when no port works; "" for a
                                relay-only run */
};

struct sp_batch {
  struct sp_result *results; /* one per port (per address with all_addresses) */
  int nresults;              /* how many */
  double dns_s;              /* resolution time, or -1 when none was done */
  struct sp_recommendation recommendation; /* from these results (the
                                              engine fills it) */
};

/* Work out the recommendation from a batch's results (the engine does it
 * once; call again after changing results, e.g. with a policy). */
void sp_recommend(const struct sp_batch *batch, struct sp_recommendation *out);

/* Free a batch and everything it holds. */
void sp_batch_free(struct sp_batch *batch);

/* Called once per submitted request, on the engine's thread, when every
 * probe of it has ended. The callback owns the batch (sp_batch_free). */
typedef void (*sp_done_fn)(struct sp_batch *batch, void *user);

struct sp_engine;

/* Create an engine; NULL with a message in err on failure. The engine
 * leaves signal dispositions alone: every write to a server goes through
 * send(MSG_NOSIGNAL), so a closed connection is an error, never SIGPIPE. */
struct sp_engine *sp_engine_new(char *err, size_t errlen);

/* Tell the library the process exits right after its probes (a plugin run
 * once per check): the TLS library's exit-time cleanup of its global
 * tables is skipped, the kernel reclaims them. Call before sp_engine_new;
 * long-running processes (exporter, collectd) must not call it. */
void sp_oneshot_process(void);

/* Queue a request. Thread-safe. Probes start at the next loop turn; the
 * request's deadline counts from this call. Returns 0, or -1 with err. */
int sp_engine_submit(struct sp_engine *eng, const struct sp_request *req,
                     sp_done_fn done, void *user, char *err, size_t errlen);

/* Run the loop in the calling thread until no work is left. */
void sp_engine_run(struct sp_engine *eng);

/* Run the loop in a thread of the engine's own until sp_engine_stop. */
int sp_engine_start(struct sp_engine *eng);

/* Stop the engine's thread (pending probes end as they are). */
void sp_engine_stop(struct sp_engine *eng);

/* Free the engine (stops its thread first). */
void sp_engine_free(struct sp_engine *eng);

/* Submit and wait for the batch: for callers in other threads than the
 * engine's own (engine started with sp_engine_start), or for a
 * single-threaded caller (then it runs the loop itself). NULL + err on
 * a request error. */
struct sp_batch *sp_probe_wait(struct sp_engine *eng,
                               const struct sp_request *req, char *err,
                               size_t errlen);

/* Probes in flight right now (for the exporter's gauge). */
int sp_engine_inflight(struct sp_engine *eng);

#ifdef __cplusplus
}
#endif

#endif /* SMTP_PROBE_H */
