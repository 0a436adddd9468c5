#!/usr/bin/env python3
"""Reference SMTP clients that check smtp_fault_server's own behaviour.

usage: client.py TEST HOST PORT CAFILE [ARG]

Each TEST talks to one listener of a running fault server and exits 0 when
the server behaved as its mode says, 1 (with a message) when not. Every
socket has a timeout, every loop a bound; only the given loopback address
is contacted.
"""
import base64
import hashlib
import hmac
import selectors
import socket
import ssl
import sys
import time
import warnings

# TLS 1.0 is deprecated in Python too; the tls10 test needs it on purpose.
warnings.filterwarnings("ignore", category=DeprecationWarning)

TIMEOUT = 10


def fail(msg):
    """Print a failure and exit 1."""
    print("FAIL: " + msg)
    sys.exit(1)


def connect(host, port):
    """A TCP connection with a timeout."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect((host, port))
    return s


def read_reply(s):
    """Read one (multi-line) SMTP reply; returns (code, [lines])."""
    buf = b""
    lines = []
    while len(buf) < 65536:
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            lines.append(line.decode("ascii", "replace"))
            if len(line) >= 4 and line[3:4] == b" ":
                return int(line[:3]), lines
        chunk = s.recv(4096)
        if not chunk:
            fail("connection closed in a reply; got %r" % (lines,))
        buf += chunk
    fail("reply too long")


def read_replies(s, n):
    """Read until N replies have ended (replies that arrive in one read
    too); returns [(code, last line)]."""
    buf = b""
    done = []
    while len(buf) < 65536:
        for line in buf.split(b"\r\n")[:-1]:
            if len(line) >= 4 and line[3:4] == b" ":
                done.append((line[:3].decode(), line.decode("ascii", "replace")))
        if len(done) >= n:
            return done[:n]
        done = []
        chunk = s.recv(4096)
        if not chunk:
            fail("connection closed after %r" % buf)
        buf += chunk
    fail("replies too long")


def command(s, line, want):
    """Send a command line, read the reply, check its code."""
    s.sendall(line.encode() + b"\r\n")
    code, lines = read_reply(s)
    if code != want:
        fail("%s: got %d %r, want %d" % (line.split(" ")[0], code, lines, want))
    return lines


def tls_context(cafile, legacy=False):
    """A verifying client context for the test CA."""
    ctx = ssl.create_default_context(cafile=cafile)
    if legacy:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    return ctx


def starttls(s, cafile, legacy=False):
    """EHLO, STARTTLS, handshake; returns the TLS socket."""
    read_reply(s)
    command(s, "EHLO client.test", 250)
    command(s, "STARTTLS", 220)
    return tls_context(cafile, legacy).wrap_socket(
        s, server_hostname="mail.smtp-probe.test")


def test_dialogue(host, port, cafile, _arg):
    """starttls mode: capabilities before/after TLS, MAIL/RCPT/QUIT."""
    s = connect(host, port)
    code, lines = read_reply(s)
    if code != 220:
        fail("greeting %r" % lines)
    caps = [l[4:] for l in command(s, "EHLO client.test", 250)[1:]]
    for want in ("PIPELINING", "SIZE 10240000", "8BITMIME",
                 "ENHANCEDSTATUSCODES", "STARTTLS"):
        if want not in caps:
            fail("plaintext EHLO lacks %s: %r" % (want, caps))
    if any(c.startswith("AUTH") for c in caps):
        fail("plaintext EHLO offers AUTH: %r" % caps)
    command(s, "HELO client.test", 250)
    command(s, "NOOP", 250)
    command(s, "STARTTLS", 220)
    t = tls_context(cafile).wrap_socket(s, server_hostname="mail.smtp-probe.test")
    caps = [l[4:] for l in command(t, "EHLO client.test", 250)[1:]]
    if "STARTTLS" in caps or "AUTH PLAIN LOGIN" not in caps:
        fail("EHLO in TLS: %r" % caps)
    command(t, "STARTTLS", 554)
    command(t, "RCPT TO:<a@b.test>", 503)
    command(t, "MAIL FROM:<a@b.test>", 250)
    command(t, "RCPT TO:<c@d.test>", 250)
    command(t, "DATA", 354)
    t.sendall(b"Subject: test\r\n\r\n..dot-stuffed line\r\nbody\r\n")
    command(t, ".", 250)
    command(t, "DATA", 503)
    command(t, "MAIL FROM:<a@b.test>", 250)
    command(t, "DATA", 554)
    command(t, "RSET", 250)
    command(t, "QUIT", 221)
    if t.recv(100) != b"":
        fail("no close after QUIT")
    print("ok: dialogue over %s" % t.version())


def pipelined_starttls(host, port, cafile):
    """Send STARTTLS+NOOP in one write; return what arrives inside TLS."""
    s = connect(host, port)
    read_reply(s)
    command(s, "EHLO client.test", 250)
    s.sendall(b"STARTTLS\r\nNOOP\r\n")
    code, lines = read_reply(s)
    if code != 220:
        fail("STARTTLS: %r" % lines)
    t = tls_context(cafile).wrap_socket(s, server_hostname="mail.smtp-probe.test")
    t.settimeout(1.0)
    try:
        return t.recv(1000)
    except (socket.timeout, TimeoutError):
        return b""


def test_injection(host, port, cafile, arg):
    """arg 'vulnerable': the NOOP is answered inside TLS; 'safe': not."""
    got = pipelined_starttls(host, port, cafile)
    if arg == "vulnerable" and not got.startswith(b"250"):
        fail("vulnerable server did not answer the injected NOOP: %r" % got)
    if arg == "safe" and got:
        fail("safe server answered injected plaintext: %r" % got)
    print("ok: %s, inside TLS got %r" % (arg, got))


def auth_session(host, port, cafile):
    """A TLS session after STARTTLS with the EHLO done."""
    t = starttls(connect(host, port), cafile)
    caps = [l[4:] for l in command(t, "EHLO client.test", 250)[1:]]
    if "AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2" not in caps:
        fail("auth mode EHLO in TLS: %r" % caps)
    return t


def test_auth(host, port, cafile, pwfile):
    """auth mode: PLAIN, LOGIN, CRAM-MD5 with the right and a wrong password."""
    with open(pwfile, "rb") as f:
        good = f.readline().rstrip(b"\r\n")
    user = b"probe@smtp-probe.test"
    s = connect(host, port)
    read_reply(s)
    command(s, "AUTH PLAIN " + base64.b64encode(b"\0" + user + b"\0" + good)
            .decode(), 530)
    for pw, want in ((good, 235), (b"wrong-" + good, 535)):
        t = auth_session(host, port, cafile)
        command(t, "AUTH PLAIN " + base64.b64encode(b"\0" + user + b"\0" + pw)
                .decode(), want)
        t = auth_session(host, port, cafile)
        command(t, "AUTH LOGIN", 334)
        command(t, base64.b64encode(user).decode(), 334)
        command(t, base64.b64encode(pw).decode(), want)
        t = auth_session(host, port, cafile)
        lines = command(t, "AUTH CRAM-MD5", 334)
        challenge = base64.b64decode(lines[0][4:])
        digest = hmac.new(pw, challenge, hashlib.md5).hexdigest().encode()
        command(t, base64.b64encode(user + b" " + digest).decode(), want)
        t = auth_session(host, port, cafile)
        blob = b"user=" + user + b"\x01auth=Bearer " + pw + b"\x01\x01"
        command(t, "AUTH XOAUTH2 " + base64.b64encode(blob).decode(), want)
        if want == 235:
            command(t, "MAIL FROM:<" + user.decode() + ">", 250)
            command(t, "RCPT TO:<x@y.test>", 250)
        else:
            command(t, "MAIL FROM:<" + user.decode() + ">", 530)
    t = auth_session(host, port, cafile)
    command(t, "AUTH PLAIN", 334)
    command(t, "*", 501)
    print("ok: PLAIN, LOGIN, CRAM-MD5, XOAUTH2 accept the password and "
          "reject others; MAIL needs AUTH")


def test_rejects(host, port, cafile, arg):
    """rcpt-reject / mail-reject: the right codes after TLS."""
    t = starttls(connect(host, port), cafile)
    command(t, "EHLO client.test", 250)
    if arg == "mail":
        command(t, "MAIL FROM:<a@b.test>", 553)
    else:
        command(t, "MAIL FROM:<a@b.test>", 250)
        command(t, "RCPT TO:<nobody@b.test>", 550)
    command(t, "QUIT", 221)
    print("ok: %s rejected" % arg)


def test_tls10(host, port, cafile, _arg):
    """tls10 mode: a TLS 1.0/1.1 client gets in; a TLS 1.2+ client not."""
    t = starttls(connect(host, port), cafile, legacy=True)
    if t.version() not in ("TLSv1", "TLSv1.1"):
        fail("negotiated %s" % t.version())
    command(t, "EHLO client.test", 250)
    s = connect(host, port)
    try:
        starttls(s, cafile)
    except ssl.SSLError as e:
        print("ok: legacy client got %s; modern client refused (%s)"
              % (t.version(), e.reason))
        return
    fail("a TLS 1.2+ client completed a handshake with the tls10 server")


def test_many(host, port, _cafile, arg):
    """Hold N connections at once: greeting, EHLO, then QUIT on each."""
    n = int(arg)
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(n):
        s = connect(host, port)
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ, {"buf": b"", "step": 0})
    # every connection is open now: the server holds n at once
    done = 0
    deadline = time.monotonic() + 60
    while done < n and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            st = key.data
            chunk = key.fileobj.recv(65536)
            if not chunk:
                fail("connection closed early at step %d" % st["step"])
            st["buf"] += chunk
            if not st["buf"].endswith(b"\r\n"):
                continue
            last = st["buf"].split(b"\r\n")[-2]
            if last[3:4] != b" ":
                continue
            st["buf"] = b""
            if st["step"] == 0 and last.startswith(b"220"):
                key.fileobj.sendall(b"EHLO client.test\r\n")
            elif st["step"] == 1 and last.startswith(b"250"):
                key.fileobj.sendall(b"QUIT\r\n")
            elif st["step"] == 2 and last.startswith(b"221"):
                sel.unregister(key.fileobj)
                done += 1
            else:
                fail("unexpected reply %r at step %d" % (last, st["step"]))
            st["step"] += 1
    for s in socks:
        s.close()
    if done != n:
        fail("%d of %d connections finished" % (done, n))
    print("ok: %d concurrent connections served" % n)


def modern_client_hello(cafile, legacy=False):
    """The bytes of a ClientHello from Python's ssl (TLS 1.2+ by default;
    legacy: TLS 1.0+ at security level 0), made in memory, never sent."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = tls_context(cafile, legacy).wrap_bio(
        incoming, outgoing, server_hostname="mail.smtp-probe.test")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    if not hello or hello[0] != 0x16:
        fail("could not make a ClientHello: %r" % hello[:16])
    return hello


def read_to_eof(s, cap=65536):
    """Everything the peer sends until it closes (bounded); returns
    (bytes, how it ended: 'eof', 'reset' or 'cap')."""
    buf = b""
    while len(buf) < cap:
        try:
            chunk = s.recv(4096)
        except ConnectionResetError:
            return buf, "reset"
        if not chunk:
            return buf, "eof"
        buf += chunk
    return buf, "cap"


def plain_starttls(host, port):
    """Greeting, EHLO, STARTTLS 220 on a plaintext socket (no handshake)."""
    s = connect(host, port)
    read_reply(s)
    command(s, "EHLO client.test", 250)
    command(s, "STARTTLS", 220)
    return s


def test_greetdelay(host, port, cafile, arg):
    """greet_delay=MS (arg): the greeting comes no earlier; a command sent
    early is answered after it; an early ClientHello gets a 500 after it."""
    delay = int(arg) / 1000.0
    s = connect(host, port)
    start = time.monotonic()
    code, lines = read_reply(s)
    took = time.monotonic() - start
    if code != 220 or took < delay or took > delay + 3:
        fail("greeting %r after %.3fs, want 220 after %.3fs" %
             (lines, took, delay))
    command(s, "EHLO client.test", 250)
    command(s, "QUIT", 221)
    s = connect(host, port)
    s.sendall(b"NOOP\r\n")
    got = read_replies(s, 2)
    if got[0][0] != "220" or got[1][0] != "250":
        fail("an early NOOP: got %r, want 220 then 250" % got)
    s = connect(host, port)
    s.sendall(modern_client_hello(cafile))
    got = read_replies(s, 2)
    if got[0][0] != "220" or got[1][0] != "500" or "5.5.1" not in got[1][1]:
        fail("an early ClientHello: got %r, want 220 then 500 5.5.1" % got)
    lines = [got[1][1]]
    command(s, "QUIT", 221)
    print("ok: greeting after %.3fs (want >= %.3fs); early NOOP answered, "
          "early ClientHello got %s" % (took, delay, lines[0]))


def test_tls11close(host, port, cafile, arg):
    """tls11-close: a TLS 1.2+ ClientHello gets a plain close (FIN, no
    alert, not a reset); a TLS 1.0+ client negotiates TLS 1.1. arg
    'implicit': TLS from the first byte instead of STARTTLS."""
    implicit = arg == "implicit"
    s = connect(host, port) if implicit else plain_starttls(host, port)
    s.sendall(modern_client_hello(cafile))
    got, how = read_to_eof(s)
    if got or how != "eof":
        fail("TLS 1.2+ ClientHello: got %r then %s, want nothing then eof"
             % (got[:16], how))
    s = connect(host, port) if implicit else plain_starttls(host, port)
    t = tls_context(cafile, legacy=True).wrap_socket(
        s, server_hostname="mail.smtp-probe.test")
    if t.version() != "TLSv1.1":
        fail("legacy client negotiated %s, want TLSv1.1" % t.version())
    if implicit:
        read_reply(t)
    command(t, "EHLO client.test", 250)
    command(t, "QUIT", 221)
    print("ok: TLS 1.2+ hello closed without an alert; legacy client got %s"
          % t.version())


def test_sha1sigalg(host, port, cafile, _arg):
    """sha1-sigalg: a default client fails the handshake; a security
    level 0 client completes it at TLS 1.2."""
    try:
        tls_context(cafile).wrap_socket(plain_starttls(host, port),
                                        server_hostname="mail.smtp-probe.test")
        fail("a default-security client completed the handshake")
    except ssl.SSLError as e:
        reason = e.reason
    t = tls_context(cafile, legacy=True).wrap_socket(
        plain_starttls(host, port), server_hostname="mail.smtp-probe.test")
    if t.version() != "TLSv1.2":
        fail("legacy client negotiated %s, want TLSv1.2" % t.version())
    command(t, "EHLO client.test", 250)
    command(t, "QUIT", 221)
    print("ok: default client refused (%s); legacy client got %s %s"
          % (reason, t.version(), t.cipher()[0]))


def test_tlsalert(host, port, cafile, _arg):
    """tls-alert: the ClientHello is answered with one fatal
    internal_error alert record (15 03 0x 00 02 02 50), then a close."""
    s = plain_starttls(host, port)
    s.sendall(modern_client_hello(cafile))
    got, how = read_to_eof(s)
    if len(got) != 7 or got[0] != 0x15 or got[3:7] != b"\x00\x02\x02\x50":
        fail("want one fatal internal_error alert, got %r (%s)" % (got, how))
    print("ok: alert record %s, then %s" % (got.hex(), how))


def expect_code(s, line, want, enhanced):
    """Send a command; the reply must be WANT with the enhanced code."""
    lines = command(s, line, want)
    if enhanced not in lines[-1]:
        fail("%s: %r lacks %s" % (line.split(" ")[0], lines, enhanced))
    return lines[-1]


def test_tempfail(host, port, cafile, mode):
    """The 4xx modes: the temporary failure at the right step, with its
    enhanced status code."""
    if mode == "ehlo-421":
        for verb in ("EHLO", "HELO"):
            s = connect(host, port)
            read_reply(s)
            got = expect_code(s, verb + " client.test", 421, "4.3.2")
            if read_to_eof(s)[1] != "eof":
                fail("no close after 421")
        print("ok: EHLO and HELO: %s, then close" % got)
        return
    t = starttls(connect(host, port), cafile)
    caps = [l[4:] for l in command(t, "EHLO client.test", 250)[1:]]
    if mode == "auth-454":
        if "AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2" not in caps:
            fail("auth-454 EHLO in TLS: %r" % caps)
        blob = base64.b64encode(b"\0probe@smtp-probe.test\0pw").decode()
        got = expect_code(t, "AUTH PLAIN " + blob, 454, "4.7.0")
        command(t, "AUTH LOGIN", 334)
        command(t, base64.b64encode(b"probe@smtp-probe.test").decode(), 334)
        expect_code(t, base64.b64encode(b"pw").decode(), 454, "4.7.0")
        print("ok: AUTH PLAIN and LOGIN: %s" % got)
        return
    steps = {
        "mail-451": [("MAIL FROM:<a@b.test>", 451, "4.3.0")],
        "mail-451-47": [("MAIL FROM:<a@b.test>", 451, "4.7.1")],
        "rcpt-450": [("MAIL FROM:<a@b.test>", 250, "2.1.0"),
                     ("RCPT TO:<c@d.test>", 450, "4.2.1")],
        "data-451": [("MAIL FROM:<a@b.test>", 250, "2.1.0"),
                     ("RCPT TO:<c@d.test>", 250, "2.1.5"),
                     ("DATA", 451, "4.3.1")],
        "eod-451": [("MAIL FROM:<a@b.test>", 250, "2.1.0"),
                    ("RCPT TO:<c@d.test>", 250, "2.1.5"),
                    ("DATA", 354, ""),
                    ("Subject: t\r\n\r\nbody\r\n.", 451, "4.3.0")],
    }
    if mode not in steps:
        fail("unknown mode %s" % mode)
    got = ""
    for line, want, enhanced in steps[mode]:
        got = expect_code(t, line, want, enhanced)
    command(t, "RSET", 250)
    command(t, "QUIT", 221)
    print("ok: %s: %s" % (mode, got))


def test_software(host, port, cafile, name):
    """software=NAME: that MTA's default greeting and EHLO first line."""
    greetings = {"postfix": "ESMTP Postfix (Debian/GNU)",
                 "exim": "ESMTP Exim 4.96 ", "haraka": "ESMTP Haraka/3.3.0 ready"}
    s = connect(host, port)
    code, lines = read_reply(s)
    if code != 220 or greetings[name] not in lines[0]:
        fail("greeting %r lacks %r" % (lines, greetings[name]))
    ehlo = command(s, "EHLO client.test", 250)
    if name == "haraka" and "Haraka is at your service" not in ehlo[0]:
        fail("EHLO %r" % ehlo[0])
    if name == "postfix" and ehlo[0] != "250-fault.smtp-probe.test":
        fail("EHLO %r" % ehlo[0])
    command(s, "QUIT", 221)
    print("ok: %s" % lines[0])


def test_mechs(host, port, cafile, arg):
    """mechs=M1+M2 (arg M1,M2): only those are offered after TLS, and
    another mechanism is refused with 504."""
    want = arg.replace(",", " ")
    t = starttls(connect(host, port), cafile)
    caps = [l[4:] for l in command(t, "EHLO client.test", 250)[1:]]
    if "AUTH " + want not in caps:
        fail("EHLO in TLS %r lacks AUTH %s" % (caps, want))
    for mech in ("CRAM-MD5", "XOAUTH2", "PLAIN", "LOGIN"):
        if mech not in want.split():
            command(t, "AUTH " + mech, 504)
    command(t, "QUIT", 221)
    print("ok: AUTH %s offered, others refused" % want)


TESTS = {
    "dialogue": test_dialogue,
    "injection": test_injection,
    "auth": test_auth,
    "rejects": test_rejects,
    "tls10": test_tls10,
    "many": test_many,
    "greetdelay": test_greetdelay,
    "tls11close": test_tls11close,
    "sha1sigalg": test_sha1sigalg,
    "tlsalert": test_tlsalert,
    "tempfail": test_tempfail,
    "software": test_software,
    "mechs": test_mechs,
}

if __name__ == "__main__":
    if len(sys.argv) < 5 or sys.argv[1] not in TESTS:
        print(__doc__)
        sys.exit(2)
    TESTS[sys.argv[1]](sys.argv[2], int(sys.argv[3]), sys.argv[4],
                       sys.argv[5] if len(sys.argv) > 5 else None)
