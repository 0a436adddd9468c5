"""Wait until every listed SMTP listener accepts a connection and greets.

usage: wait_ready.py SECONDS SPEC...
  SPEC  ADDR:PORT         plaintext: a "220 " greeting line
        ADDR:PORT:tls     implicit TLS: a TLS handshake (no verification:
                          this only proves readiness), then "220 "
        ADDR:PORT:accept  only accept a TCP connection (a listener whose
                          greeting is delayed on purpose)

Exits 0 once all are ready (each polled until it is), 1 with the ones that
are not after SECONDS. Each ready listener is asked once more with QUIT so
that servers log a clean session. Loopback addresses only; no name lookups.
"""
import socket
import ssl
import sys
import time


def ready(addr, port, mode):
    """True when the listener answers as its mode says."""
    try:
        sock = socket.create_connection((addr, int(port)), timeout=2)
    except OSError:
        return False
    try:
        if mode == "accept":
            return True
        if mode == "tls":
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock)
        line = sock.makefile("rb").readline(512)
        if not line.startswith(b"220 "):
            return False
        sock.sendall(b"QUIT\r\n")
        return True
    except (OSError, ssl.SSLError):
        return False
    finally:
        sock.close()


def main():
    deadline = time.monotonic() + float(sys.argv[1])
    pending = [s.split(":") for s in sys.argv[2:]]
    for spec in pending:
        if len(spec) == 2:
            spec.append("plain")
    while pending:
        pending = [s for s in pending if not ready(*s)]
        if not pending:
            break
        if time.monotonic() >= deadline:
            names = " ".join(":".join(s) for s in pending)
            print(f"wait_ready: not ready after {sys.argv[1]}s: {names}", file=sys.stderr)
            return 1
        time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
