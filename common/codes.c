/*
 * codes.c - names of phases, codes, roles, modes and states; the hints;
 * and the role x code -> state table every adapter uses.
 */
#include <string.h>
#include <strings.h>

#include "smtp_probe.h"

/* Phase names, indexed by enum sp_phase. */
static const char *const phase_names[SP_PHASE_COUNT] = {
    "dns",      "connect", "banner",    "ehlo",    "starttls", "tls_handshake",
    "ehlo_tls", "auth",    "mail_from", "rcpt_to", "total",
};

/* One diagnosis code: its word, its scope, its hint, its state per role. */
struct code_entry {
  const char *name;            /* the contract word */
  enum sp_code_scope scope;    /* what it is about */
  const char *hint;            /* what to check first */
  enum sp_state on_submission; /* state on the submission role */
  enum sp_state on_implicit;   /* state on the implicit-TLS role */
  enum sp_state on_relay;      /* state on the relay role */
};

#define PORT SP_SCOPE_PORT
#define DOMAIN SP_SCOPE_DOMAIN
#define TRIP SP_SCOPE_ROUND_TRIP
#define UNKNOWN SP_STATE_UNKNOWN
#define OK SP_STATE_OK
#define WARN SP_STATE_WARNING
#define CRIT SP_STATE_CRITICAL

/* The table, indexed by enum sp_code (documented in README.md). */
static const struct code_entry codes[SP_CODE_COUNT] = {
    [SP_OK] = {"ok", PORT, "all phases passed", OK, OK, OK},
    [SP_DNS_ERROR] = {"dns_error", PORT,
                      "name resolution failed: check the host name and the "
                      "resolver",
                      CRIT, CRIT, CRIT},
    [SP_CONNECT_REFUSED] = {"connect_refused", PORT,
                            "nothing listens there: check the port number and "
                            "that the mail service runs",
                            CRIT, CRIT, CRIT},
    [SP_CONNECT_TIMEOUT] = {"connect_timeout", PORT,
                            "outbound network policy / firewall: check egress "
                            "to host:port (port 25 is often blocked)",
                            CRIT, CRIT, CRIT},
    [SP_NETWORK_UNREACHABLE] = {"network_unreachable", PORT,
                                "no route to the host: check routing and the "
                                "address family (-4/-6)",
                                CRIT, CRIT, CRIT},
    [SP_CONNECTION_CLOSED] = {"connection_closed", PORT,
                              "the server closed the connection: check its "
                              "logs (limits, blocklists, crashes)",
                              CRIT, CRIT, CRIT},
    [SP_BANNER_TIMEOUT] = {"banner_timeout", PORT,
                           "no greeting: the server is overloaded, a proxy "
                           "holds the connection, or the TLS mode is wrong",
                           CRIT, CRIT, CRIT},
    [SP_READ_TIMEOUT] = {"read_timeout", PORT,
                         "the server stopped answering mid-dialogue: check "
                         "its load and any middlebox",
                         CRIT, CRIT, CRIT},
    [SP_REJECTED] = {"rejected", PORT,
                     "the server refused for good (5xx): check sender "
                     "identity, domain auth, recipient policy, client "
                     "blocklists",
                     CRIT, CRIT, CRIT},
    /* A temporary refusal: a sender's MTA retries one later (WARNING on
     * relay), most applications submitting mail do not (CRITICAL). */
    [SP_DEFERRED] = {"deferred", PORT,
                     "a temporary refusal (4xx): check the server's "
                     "connection and rate limits, its load, and "
                     "greylisting",
                     CRIT, CRIT, WARN},
    [SP_PROTOCOL_ERROR] = {"protocol_error", PORT,
                           "the peer does not speak SMTP correctly: check "
                           "that this port is a mail server",
                           CRIT, CRIT, CRIT},
    [SP_TLS_MODE_MISMATCH] = {"tls_mode_mismatch", PORT,
                              "port and TLS mode pairing: 465 is implicit "
                              "TLS, 587/2525/25 use STARTTLS",
                              CRIT, CRIT, CRIT},
    [SP_STARTTLS_UNAVAILABLE] = {"starttls_unavailable", PORT,
                                 "STARTTLS is not offered or cannot start: "
                                 "enable TLS on the server (can it read its "
                                 "certificate and key?)",
                                 CRIT, CRIT, WARN},
    [SP_TLS_HANDSHAKE_FAILED] = {"tls_handshake_failed", PORT,
                                 "port and TLS mode pairing, then protocol "
                                 "versions and ciphers on both sides (after a "
                                 "TLS alert: the server's log, key and "
                                 "certificate)",
                                 CRIT, CRIT, WARN},
    [SP_TLS_WEAK_PROTOCOL] = {"tls_weak_protocol", PORT,
                              "the server negotiated TLS below 1.2: raise its "
                              "minimum protocol version",
                              WARN, WARN, WARN},
    [SP_CERT_UNTRUSTED] = {"cert_untrusted", PORT,
                           "the certificate chain does not verify: install "
                           "the intermediates, or pass --cafile",
                           CRIT, CRIT, WARN},
    [SP_CERT_HOSTNAME_MISMATCH] = {"cert_hostname_mismatch", PORT,
                                   "the certificate does not name this host: "
                                   "check SANs, or --sni",
                                   CRIT, CRIT, WARN},
    [SP_CERT_EXPIRED] = {"cert_expired", PORT,
                         "a certificate the server sent has expired: renew "
                         "it and reload the server",
                         CRIT, CRIT, CRIT},
    [SP_CERT_EXPIRING] = {"cert_expiring", PORT,
                          "a certificate expires soon: renew it (is "
                          "automatic renewal running?)",
                          WARN, WARN, WARN},
    [SP_AUTH_BEFORE_TLS] = {"auth_before_tls", PORT,
                            "AUTH is offered before TLS: credentials could "
                            "travel in clear (Postfix smtpd_tls_auth_only, "
                            "Exim auth_advertise_hosts, Haraka auth plugin "
                            "TLS setting)",
                            CRIT, WARN, WARN},
    [SP_AUTH_UNAVAILABLE] = {"auth_unavailable", PORT,
                             "AUTH or the wanted mechanism is not offered "
                             "after TLS: enable SASL on the submission "
                             "service, or pick an offered one (--auth-mech)",
                             CRIT, CRIT, WARN},
    [SP_AUTH_FAILED] = {"auth_failed", PORT,
                        "credentials rejected: check user name, password and "
                        "mechanism",
                        CRIT, CRIT, CRIT},
    [SP_STARTTLS_INJECTION] = {"starttls_injection", PORT,
                               "the server answers commands injected before "
                               "STARTTLS (CVE-2011-0411 class): upgrade it",
                               CRIT, CRIT, CRIT},
    [SP_POLICY_VIOLATION] = {"policy_violation", PORT,
                             "the port does not match the environment's "
                             "policy",
                             CRIT, CRIT, CRIT},
    /* Mail-domain codes: the state is the MX's (roles do not apply); an
     * MTA-STS finding under mode testing is WARNING (sp_code_state_sts). */
    [SP_DNSSEC_BOGUS] =
        {"dnssec_bogus", DOMAIN,
         "an answer DANE depends on failed DNSSEC validation (senders defer): "
         "check the zone's signatures and DS records",
         CRIT, CRIT, CRIT},
    [SP_DANE_MISMATCH] =
        {"dane_mismatch", DOMAIN,
         "secure, usable TLSA records match no certificate of the chain: "
         "publish the new key's TLSA before a rollover",
         CRIT, CRIT, CRIT},
    [SP_DANE_UNUSABLE] =
        {"dane_unusable", DOMAIN,
         "every TLSA record is unusable (usage 0/1, bad data): mail flows with "
         "TLS but unauthenticated; publish usage 2 or 3",
         WARN, WARN, WARN},
    [SP_MTA_STS_POLICY_ERROR] =
        {"mta_sts_policy_error", DOMAIN,
         "the MTA-STS record exists but the policy cannot be fetched or "
         "parsed: check https://mta-sts.DOMAIN/.well-known/mta-sts.txt and its "
         "certificate",
         CRIT, CRIT, CRIT},
    [SP_MTA_STS_MX_MISMATCH] =
        {"mta_sts_mx_mismatch", DOMAIN,
         "an MX matches no mx pattern of the MTA-STS policy: add it to the "
         "policy (a * is one label)",
         CRIT, CRIT, CRIT},
    [SP_TLS_RPT_INVALID] = {"tls_rpt_invalid", DOMAIN,
                            "the TLS-RPT record is malformed: v=TLSRPTv1; "
                            "rua=mailto:... or https:...",
                            WARN, WARN, WARN},
    [SP_SPF_MISSING] = {"spf_missing", DOMAIN,
                        "no SPF record: publish one v=spf1 TXT record", WARN,
                        WARN, WARN},
    [SP_SPF_INVALID] =
        {"spf_invalid", DOMAIN,
         "the SPF record is broken (several records, bad syntax, more than 10 "
         "lookups): receivers get permerror",
         WARN, WARN, WARN},
    [SP_DMARC_MISSING] =
        {"dmarc_missing", DOMAIN,
         "no DMARC record: publish _dmarc.DOMAIN TXT v=DMARC1; p=...", WARN,
         WARN, WARN},
    [SP_DMARC_INVALID] =
        {"dmarc_invalid", DOMAIN,
         "the DMARC record is malformed: v=DMARC1 first, p= required", WARN,
         WARN, WARN},
    [SP_DKIM_MISSING] =
        {"dkim_missing", DOMAIN,
         "the DKIM selector has no key: publish SELECTOR._domainkey TXT", WARN,
         WARN, WARN},
    [SP_DKIM_INVALID] = {"dkim_invalid", DOMAIN,
                         "the DKIM key is unusable (revoked, unreadable, RSA "
                         "below 1024 bits): publish a new key",
                         WARN, WARN, WARN},
    /* Round-trip codes. */
    [SP_DELIVERY_TIMEOUT] =
        {"delivery_timeout", TRIP,
         "the test message did not arrive before the deadline: check the mail "
         "log of each hop and the queue",
         CRIT, CRIT, CRIT},
    [SP_BOUNCED] = {"bounced", TRIP,
                    "the test message bounced: the DSN's Status and "
                    "Diagnostic-Code say why",
                    CRIT, CRIT, CRIT},
    [SP_DELIVERY_DELAYED] =
        {"delivery_delayed", TRIP,
         "a hop reported the test message delayed (4.x.x DSN): check that "
         "hop's queue and the next hop's reachability",
         WARN, WARN, WARN},
    [SP_DELIVERED_TO_JUNK] =
        {"delivered_to_junk", TRIP,
         "the test message landed in Junk: check SPF, DKIM and DMARC alignment "
         "and the sender's reputation",
         WARN, WARN, WARN},
    [SP_DKIM_VERIFY_FAILED] =
        {"dkim_verify_failed", TRIP,
         "the message's DKIM signature did not verify (or is missing): check "
         "the signing key and that no hop rewrites the message",
         CRIT, CRIT, CRIT},
    [SP_AUTHRES_FAILED] =
        {"authres_failed", TRIP,
         "the receiving side's Authentication-Results say spf, dkim or dmarc "
         "fail: check alignment with the From domain",
         CRIT, CRIT, CRIT},
    [SP_HOP_WITHOUT_TLS] =
        {"hop_without_tls", TRIP,
         "a hop between two hosts used no TLS: enable STARTTLS on that hop",
         WARN, WARN, WARN},
    [SP_MAILBOX_UNREACHABLE] =
        {"mailbox_unreachable", TRIP,
         "the mailbox to read the test message from cannot be reached: check "
         "the IMAP/POP3 URL, port and TLS",
         UNKNOWN, UNKNOWN, UNKNOWN},
    [SP_MAILBOX_AUTH_FAILED] = {"mailbox_auth_failed", TRIP,
                                "the mailbox refused our login: check the "
                                "mailbox user and its password file",
                                UNKNOWN, UNKNOWN, UNKNOWN},
};

#undef PORT
#undef DOMAIN
#undef TRIP
#undef UNKNOWN
#undef OK
#undef WARN
#undef CRIT

/* The phase's name. */
const char *sp_phase_name(enum sp_phase phase) {
  if ((unsigned)phase >= SP_PHASE_COUNT)
    return "unknown";
  return phase_names[phase];
}

/* Add a code to a set. */
void sp_code_set_add(struct sp_code_set *set, enum sp_code code) {
  if ((unsigned)code < SP_CODE_COUNT)
    set->bits[code / 64] |= (uint64_t)1 << (code % 64);
}

/* Whether a code is in a set. */
bool sp_code_set_has(const struct sp_code_set *set, enum sp_code code) {
  return (unsigned)code < SP_CODE_COUNT &&
         (set->bits[code / 64] >> (code % 64)) & 1;
}

/* The code's scope. */
enum sp_code_scope sp_code_scope(enum sp_code code) {
  if ((unsigned)code >= SP_CODE_COUNT)
    return SP_SCOPE_PORT;
  return codes[code].scope;
}

/* The state of a code under an MTA-STS policy mode: a failure of the
 * policy (its fetch, an MX it does not name) is CRITICAL under enforce
 * (senders refuse) and WARNING under testing (senders deliver and
 * report); every other code keeps its table state. */
enum sp_state sp_code_state_sts(enum sp_code code, enum sp_role role,
                                bool testing) {
  enum sp_state st = sp_code_state(code, role);
  bool sts = code == SP_MTA_STS_POLICY_ERROR || code == SP_MTA_STS_MX_MISMATCH;
  return sts && testing && st == SP_STATE_CRITICAL ? SP_STATE_WARNING : st;
}

/* The scope's word. */
const char *sp_code_scope_name(enum sp_code_scope scope) {
  static const char *const names[] = {"port", "domain", "round_trip"};
  if ((unsigned)scope >= sizeof(names) / sizeof(names[0]))
    return "unknown";
  return names[scope];
}

/* The code's word. */
const char *sp_code_name(enum sp_code code) {
  if ((unsigned)code >= SP_CODE_COUNT)
    return "unknown";
  return codes[code].name;
}

/* The code's generic hint. */
const char *sp_code_hint(enum sp_code code) {
  if ((unsigned)code >= SP_CODE_COUNT)
    return "";
  return codes[code].hint;
}

/* What to check first: the result's own hint, else the code's. */
const char *sp_result_check_first(const struct sp_result *res) {
  if (res->hint[0])
    return res->hint;
  return sp_code_hint(res->code);
}

/* Parse a code word. */
int sp_code_from_name(const char *name) {
  for (int i = 0; name && i < SP_CODE_COUNT; i++)
    if (strcmp(codes[i].name, name) == 0)
      return i;
  return -1;
}

/* Role names, indexed by enum sp_role. */
static const char *const role_names[] = {"default", "submission", "implicit",
                                         "relay"};

/* TLS mode names, indexed by enum sp_tls_mode. */
static const char *const mode_names[] = {"auto", "none", "starttls",
                                         "implicit"};

/* State names, indexed by enum sp_state. */
static const char *const state_names[] = {"OK", "WARNING", "CRITICAL",
                                          "UNKNOWN"};

/* The role's name. */
const char *sp_role_name(enum sp_role role) {
  if ((unsigned)role > SP_ROLE_RELAY)
    return "unknown";
  return role_names[role];
}

/* Parse a role name (case-insensitive); "default" is not accepted. */
int sp_role_from_name(const char *name) {
  for (int i = SP_ROLE_DEFAULT; name && i <= SP_ROLE_RELAY; i++)
    if (strcasecmp(role_names[i], name) == 0)
      return i;
  return -1;
}

/* Parse a TLS version word, the one grammar of every adapter and the
 * policy file: "1.0".."1.3", optionally after "TLSv" or "TLS" (OpenSSL
 * names a session "TLSv1.2", and TLS 1.0 "TLSv1"), or blackbox_exporter's
 * "TLS10".."TLS13"; any case. The version number, or 0 when unknown. */
int sp_tls_version_from_name(const char *s) {
  static const struct {
    const char *word; /* after the prefix */
    int version;      /* protocol number */
  } words[] = {{"1.0", 0x0301}, {"1", 0x0301},   {"1.1", 0x0302},
               {"1.2", 0x0303}, {"1.3", 0x0304}, {"10", 0x0301},
               {"11", 0x0302},  {"12", 0x0303},  {"13", 0x0304}};
  if (!s)
    return 0;
  bool prefixed = false;
  if (strncasecmp(s, "TLSv", 4) == 0) {
    s += 4;
    prefixed = true;
  } else if (strncasecmp(s, "TLS", 3) == 0) {
    s += 3;
    prefixed = true;
  }
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
    bool bare_only_with_prefix = strchr(words[i].word, '.') == NULL;
    if (bare_only_with_prefix && !prefixed)
      continue; /* "1" or "12" alone is not a version */
    if (strcmp(s, words[i].word) == 0)
      return words[i].version;
  }
  return 0;
}

/* The TLS mode's name. */
const char *sp_tls_mode_name(enum sp_tls_mode mode) {
  if ((unsigned)mode > SP_TLS_IMPLICIT)
    return "unknown";
  return mode_names[mode];
}

/* Parse a TLS mode name (case-insensitive). */
int sp_tls_mode_from_name(const char *name) {
  for (int i = SP_TLS_AUTO; name && i <= SP_TLS_IMPLICIT; i++)
    if (strcasecmp(mode_names[i], name) == 0)
      return i;
  return -1;
}

/* The state's name. */
const char *sp_state_name(enum sp_state state) {
  if ((unsigned)state > SP_STATE_UNKNOWN)
    return "UNKNOWN";
  return state_names[state];
}

/* The default role of a port number. */
enum sp_role sp_role_for_port(uint16_t port) {
  if (port == 465)
    return SP_ROLE_IMPLICIT;
  if (port == 25)
    return SP_ROLE_RELAY;
  return SP_ROLE_SUBMISSION;
}

/* Look the code up in the role x code table. */
enum sp_state sp_code_state(enum sp_code code, enum sp_role role) {
  if ((unsigned)code >= SP_CODE_COUNT)
    return SP_STATE_UNKNOWN;
  switch (role) {
  case SP_ROLE_IMPLICIT:
    return codes[code].on_implicit;
  case SP_ROLE_RELAY:
    return codes[code].on_relay;
  case SP_ROLE_SUBMISSION:
  case SP_ROLE_DEFAULT:
  default:
    return codes[code].on_submission;
  }
}

/* Codes that mean "no answer in time or no route". */
bool sp_code_is_timeout(enum sp_code code) {
  return code == SP_DNS_ERROR || code == SP_CONNECT_TIMEOUT ||
         code == SP_NETWORK_UNREACHABLE || code == SP_BANNER_TIMEOUT ||
         code == SP_READ_TIMEOUT;
}

/* Days until not_after, rounded down (negative once past). */
long sp_days_left(time_t not_after, time_t now) {
  long long diff = (long long)not_after - (long long)now;
  long long days = diff / 86400;
  if (diff < 0 && diff % 86400 != 0)
    days -= 1;
  return (long)days;
}

/* Success, the same for every adapter: the diagnosis is ok. */
bool sp_result_success(const struct sp_result *res) {
  return res->code == SP_OK;
}
