/*
 * reply.c - assemble SMTP replies (RFC 5321 4.2) from raw input under
 * hard caps, and parse EHLO capability lists.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reply.h"

/* Start an empty reply. */
void sp_reply_init(struct sp_reply *r) {
  sp_buf_init(&r->text, SP_MAX_REPLY_BYTES);
  sp_reply_reset(r);
}

/* Empty a reply for the next one (keeps its memory). */
void sp_reply_reset(struct sp_reply *r) {
  r->code = 0;
  r->nlines = 0;
  sp_buf_consume(&r->text, r->text.len);
  r->first[0] = '\0';
}

/* Free a reply's memory. */
void sp_reply_free(struct sp_reply *r) {
  sp_buf_free(&r->text);
}

/* True when the first bytes of a line look like "DDD" followed by ' ',
 * '-' or the end of the line (n = bytes available, complete = the line
 * ended there). A prefix too short to judge counts as plausible. */
static bool line_prefix_ok(const char *s, size_t n, bool complete) {
  if (n >= 1 && (s[0] < '2' || s[0] > '5'))
    return false;
  if (n >= 2 && !isdigit((unsigned char)s[1]))
    return false;
  if (n >= 3 && !isdigit((unsigned char)s[2]))
    return false;
  /* a partial line may end in the CR of "250\r\n" (LF still to come) */
  if (n >= 4 && s[3] != ' ' && s[3] != '-' && (complete || s[3] != '\r'))
    return false;
  if (complete && n < 3)
    return false;
  return true;
}

/* Take complete lines from in until the reply is whole. */
enum sp_reply_status sp_reply_feed(struct sp_reply *r, struct sp_buf *in,
                                   struct sp_buf *transcript, char *err,
                                   size_t errlen) {
  for (;;) {
    char *nl = in->len ? memchr(in->data, '\n', in->len) : NULL;
    if (!nl) {
      /* No whole line yet: judge what we have so garbage fails early. */
      if (!line_prefix_ok(in->data, in->len < 4 ? in->len : 4, false)) {
        char shown[48];
        sp_sanitize(shown, sizeof(shown), in->data,
                    in->len < 40 ? in->len : 40);
        snprintf(err, errlen, "not an SMTP reply: \"%s\"", shown);
        return SP_REPLY_ERROR;
      }
      /* the cap is on the line itself; a trailing CR waits for its LF */
      size_t partial = in->len;
      if (partial > 0 && in->data[partial - 1] == '\r')
        partial--;
      if (partial > SP_MAX_LINE) {
        snprintf(err, errlen, "reply line longer than %d bytes", SP_MAX_LINE);
        return SP_REPLY_ERROR;
      }
      return SP_REPLY_MORE;
    }
    size_t linelen = (size_t)(nl - in->data);
    size_t consumed = linelen + 1;
    if (linelen > 0 && in->data[linelen - 1] == '\r')
      linelen--;
    if (linelen > SP_MAX_LINE) {
      snprintf(err, errlen, "reply line longer than %d bytes", SP_MAX_LINE);
      return SP_REPLY_ERROR;
    }
    const char *line = in->data;
    if (transcript)
      sp_transcript_add(transcript, "S: ", line, linelen);
    if (!line_prefix_ok(line, linelen, true)) {
      char shown[48];
      sp_sanitize(shown, sizeof(shown), line, linelen < 40 ? linelen : 40);
      snprintf(err, errlen, "not an SMTP reply line: \"%s\"", shown);
      return SP_REPLY_ERROR;
    }
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (r->nlines > 0 && code != r->code) {
      snprintf(err, errlen, "reply code changed within a reply (%d then %d)",
               r->code, code);
      return SP_REPLY_ERROR;
    }
    if (r->nlines >= SP_MAX_REPLY_LINES) {
      snprintf(err, errlen, "reply longer than %d lines", SP_MAX_REPLY_LINES);
      return SP_REPLY_ERROR;
    }
    size_t tlen = linelen > 4 ? linelen - 4 : 0;
    if (r->text.len + tlen + 2 > SP_MAX_REPLY_BYTES) {
      snprintf(err, errlen, "reply longer than %d bytes", SP_MAX_REPLY_BYTES);
      return SP_REPLY_ERROR;
    }
    if (r->nlines == 0) {
      r->code = code;
      sp_sanitize(r->first, sizeof(r->first), line, linelen);
    }
    /* within the cap checked above: only memory can make these fail */
    if ((r->nlines > 0 && sp_buf_append(&r->text, "\n", 1) != 0) ||
        sp_buf_append(&r->text, line + (linelen > 4 ? 4 : linelen), tlen) !=
            0) {
      snprintf(err, errlen, "out of memory for a reply");
      return SP_REPLY_ERROR;
    }
    r->nlines++;
    bool last = linelen == 3 || line[3] == ' ';
    sp_buf_consume(in, consumed);
    if (last)
      return SP_REPLY_DONE;
  }
}

/* One known EHLO keyword and its flag. */
struct cap_name {
  const char *word; /* keyword as the server sends it */
  unsigned flag;    /* enum sp_cap_flag bit */
};

/* The keywords we record. */
static const struct cap_name cap_names[] = {
    {"SIZE", SP_CAP_SIZE},
    {"PIPELINING", SP_CAP_PIPELINING},
    {"8BITMIME", SP_CAP_8BITMIME},
    {"SMTPUTF8", SP_CAP_SMTPUTF8},
    {"CHUNKING", SP_CAP_CHUNKING},
    {"DSN", SP_CAP_DSN},
    {"ENHANCEDSTATUSCODES", SP_CAP_ENHANCEDSTATUSCODES},
    {"REQUIRETLS", SP_CAP_REQUIRETLS},
    {"STARTTLS", SP_CAP_STARTTLS},
    {"AUTH", SP_CAP_AUTH},
};

/* Add mechanism names from s (space separated) to caps->auth_mechs once. */
static void add_auth_mechs(struct sp_caps *caps, const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    while (i < n && (s[i] == ' ' || s[i] == '='))
      i++;
    size_t start = i;
    while (i < n && s[i] != ' ')
      i++;
    size_t wl = i - start;
    if (wl == 0 || wl > 40)
      continue;
    char word[48];
    for (size_t k = 0; k < wl; k++)
      word[k] = (char)toupper((unsigned char)s[start + k]);
    word[wl] = '\0';
    char clean[48];
    sp_sanitize(clean, sizeof(clean), word, wl);
    /* skip duplicates */
    const char *hay = caps->auth_mechs;
    bool dup = false;
    while (*hay) {
      size_t l = strcspn(hay, " ");
      if (l == wl && strncmp(hay, clean, l) == 0)
        dup = true;
      hay += l;
      while (*hay == ' ')
        hay++;
    }
    if (dup)
      continue;
    size_t cur = strlen(caps->auth_mechs);
    if (cur + wl + 2 > sizeof(caps->auth_mechs))
      return;
    if (cur)
      caps->auth_mechs[cur++] = ' ';
    memcpy(caps->auth_mechs + cur, clean, wl + 1);
  }
}

/* Parse an EHLO reply's lines into a capability structure. */
void sp_caps_parse(struct sp_caps *caps, const struct sp_reply *r) {
  memset(caps, 0, sizeof(*caps));
  caps->seen = true;
  const char *p = r->text.data ? r->text.data : "";
  const char *end = p + r->text.len;
  bool first = true;
  while (p <= end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (first) {
      size_t dl = strcspn(p, " \n");
      if (dl > n)
        dl = n;
      sp_sanitize(caps->ehlo_domain, sizeof(caps->ehlo_domain), p, dl);
      first = false;
    } else {
      size_t kl = 0;
      while (kl < n && p[kl] != ' ' && p[kl] != '=')
        kl++;
      for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++) {
        if (strlen(cap_names[i].word) != kl ||
            strncasecmp(p, cap_names[i].word, kl) != 0)
          continue;
        caps->flags |= cap_names[i].flag;
        if (cap_names[i].flag == SP_CAP_SIZE && kl < n) {
          char num[24];
          size_t nl2 =
              n - kl - 1 < sizeof(num) - 1 ? n - kl - 1 : sizeof(num) - 1;
          memcpy(num, p + kl + 1, nl2);
          num[nl2] = '\0';
          char *e = NULL;
          unsigned long long v = strtoull(num, &e, 10);
          if (e != num)
            caps->size_limit = v;
        }
        if (cap_names[i].flag == SP_CAP_AUTH && kl < n)
          add_auth_mechs(caps, p + kl + 1, n - kl - 1);
      }
    }
    if (!nl)
      break;
    p = nl + 1;
  }
}

/* Write a capability list as text. */
size_t sp_caps_format(const struct sp_caps *caps, char *buf, size_t buflen) {
  size_t o = 0;
  if (buflen == 0)
    return 0;
  buf[0] = '\0';
  if (!caps->seen)
    return 0;
  for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++) {
    if (!(caps->flags & cap_names[i].flag))
      continue;
    int n;
    if (cap_names[i].flag == SP_CAP_SIZE && caps->size_limit)
      n = snprintf(buf + o, buflen - o, "%sSIZE=%llu", o ? " " : "",
                   (unsigned long long)caps->size_limit);
    else if (cap_names[i].flag == SP_CAP_AUTH)
      n = snprintf(buf + o, buflen - o, "%sAUTH(%s)", o ? " " : "",
                   caps->auth_mechs);
    else
      n = snprintf(buf + o, buflen - o, "%s%s", o ? " " : "",
                   cap_names[i].word);
    if (n < 0 || (size_t)n >= buflen - o) {
      buf[buflen - 1] = '\0';
      return buflen - 1;
    }
    o += (size_t)n;
  }
  return o;
}
