#!/usr/bin/env python3
"""A TCP listener that never accepts: connections complete (kernel backlog)
but no byte ever arrives, so an SMTP probe waits for a banner until its
deadline. usage: blackhole.py ADDR PORT READYFILE. Runs until killed."""
import signal
import socket
import sys

addr, port, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind((addr, port))
sock.listen(128)
with open(ready, "w") as f:
    f.write("ready\n")
signal.pause()
