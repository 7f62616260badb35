#!/usr/bin/env python3
"""Opens N WebSockets (ws or wss) to one route, holds them idle for S seconds, then exits.

Used by scripts/profile-idle-memory.sh to see where an idle connection's bytes go. Standard library only.
usage: hold-idle-websockets.py PORT COUNT PATH TLS(0|1) SECONDS
"""
import socket
import ssl
import sys
import time

from websocket_upgrade import upgrade

port, count, path, tls, seconds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", float(sys.argv[5])
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # the profile's throwaway certificate
held = []
for _ in range(count):
    sock = socket.create_connection(("127.0.0.1", port))
    if tls:
        sock = context.wrap_socket(sock)
    upgrade(sock, path)
    held.append(sock)
print(f"holding {len(held)} idle connections for {seconds} s", flush=True)
time.sleep(seconds)
