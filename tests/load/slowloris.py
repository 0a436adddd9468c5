#!/usr/bin/env python3
"""Slow HTTP clients (slowloris): open COUNT connections from SOURCE to
TARGET and send a request header one byte every INTERVAL seconds without
ever finishing it, for at most DURATION seconds. Reports (one JSON line)
how many connections were accepted, how many the server closed and how
long the longest one was held. Bounded in count and time; loopback only.

usage: slowloris.py TARGET_ADDR PORT SOURCE_ADDR[,SOURCE_ADDR...] COUNT
                    INTERVAL DURATION
"""
import json
import selectors
import socket
import sys
import time

addr, port = sys.argv[1], int(sys.argv[2])
sources = sys.argv[3].split(",")
count, interval, duration = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
assert addr.startswith("127.") and all(s.startswith("127.") for s in sources)
assert 0 < count <= 2000 and 0 < duration <= 120

HEADER = b"GET /metrics HTTP/1.1\r\nHost: slow\r\nX-Slow: " + b"a" * 4096

start = time.monotonic()
conns = []  # dicts: sock, opened, sent, closed_at
refused = 0
for i in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((sources[i % len(sources)], 0))
    s.settimeout(2)
    try:
        s.connect((addr, port))
    except OSError:
        refused += 1
        s.close()
        continue
    s.setblocking(False)
    conns.append({"sock": s, "opened": time.monotonic(), "sent": 0, "closed_at": None})

sel = selectors.DefaultSelector()
for c in conns:
    sel.register(c["sock"], selectors.EVENT_READ, c)


def close(c, now):
    """Record that the server closed c."""
    if c["closed_at"] is None:
        c["closed_at"] = now
        sel.unregister(c["sock"])
        c["sock"].close()


max_open = 0
next_send = time.monotonic()
while time.monotonic() - start < duration:
    now = time.monotonic()
    if now >= next_send:
        for c in conns:
            if c["closed_at"] is not None:
                continue
            try:
                c["sock"].send(HEADER[c["sent"] % len(HEADER):][:1])
                c["sent"] += 1
            except OSError:
                close(c, now)
        next_send = now + interval
    open_now = sum(1 for c in conns if c["closed_at"] is None)
    max_open = max(max_open, open_now)
    for key, _ in sel.select(timeout=min(0.1, max(0.0, next_send - time.monotonic()))):
        c = key.data
        try:
            data = c["sock"].recv(4096)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        if not data:  # EOF or reset: the server let go
            close(c, time.monotonic())

end = time.monotonic()
held = [(c["closed_at"] or end) - c["opened"] for c in conns]
# connections the server kept longer than one second: not shed at accept
kept = [c for c, h in zip(conns, held) if h > 1.0]
report = {
    "attempted": count,
    "connected": len(conns),
    "refused_at_connect": refused,
    "closed_by_server": sum(1 for c in conns if c["closed_at"] is not None),
    "still_open_at_end": sum(1 for c in conns if c["closed_at"] is None),
    "held_over_1s": len(kept),
    "longest_held_s": round(max(held) if held else 0.0, 2),
    "bytes_sent_max": max((c["sent"] for c in conns), default=0),
}
for c in conns:
    if c["closed_at"] is None:
        c["sock"].close()
print(json.dumps(report))
