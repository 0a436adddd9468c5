#!/usr/bin/env python3
"""silent_listener.py - a TCP listener that accepts and never answers.

usage: silent_listener.py ADDR READY_FILE EVENT_LOG

Listens on ADDR with a kernel-chosen port, writes that port into READY_FILE
once listening (the readiness signal), then accepts connections and never
sends a byte. Every accept and every close by the peer is appended to
EVENT_LOG as "accept N T" / "close N T" (T: seconds since start). Bounded: at most 64 open connections
(extra ones are closed at once), at most 1024 bytes read per event, and
it exits by itself after 900 seconds. SIGTERM ends it.
"""
import os
import selectors
import signal
import socket
import sys
import time

MAX_CONNS = 64
MAX_LIFETIME_S = 900


def main():
    addr, ready_file, event_log = sys.argv[1], sys.argv[2], sys.argv[3]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((addr, 0))
    lsock.listen(16)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, None)
    log = open(event_log, "a", buffering=1)
    tmp = ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % lsock.getsockname()[1])
    os.rename(tmp, ready_file)

    conns = 0
    serial = 0
    t0 = time.monotonic()
    deadline = t0 + MAX_LIFETIME_S
    while time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            if key.data is None:
                conn, _ = lsock.accept()
                serial += 1
                if conns >= MAX_CONNS:
                    conn.close()
                    log.write("refused %d %.3f\n" % (serial, time.monotonic() - t0))
                    continue
                conns += 1
                sel.register(conn, selectors.EVENT_READ, serial)
                log.write("accept %d %.3f\n" % (serial, time.monotonic() - t0))
                continue
            try:
                data = key.fileobj.recv(1024)
            except OSError:
                data = b""
            if not data:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                conns -= 1
                log.write("close %d %.3f\n" % (key.data, time.monotonic() - t0))


if __name__ == "__main__":
    main()
