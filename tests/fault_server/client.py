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


TESTS = {
    "dialogue": test_dialogue,
    "injection": test_injection,
    "auth": test_auth,
    "rejects": test_rejects,
    "tls10": test_tls10,
    "many": test_many,
}

if __name__ == "__main__":
    if len(sys.argv) < 5 or sys.argv[1] not in TESTS:
        print(__doc__)
        sys.exit(2)
    TESTS[sys.argv[1]](sys.argv[2], int(sys.argv[3]), sys.argv[4],
                       sys.argv[5] if len(sys.argv) > 5 else None)
