#!/usr/bin/env python3
"""Opens N WebSockets (ws or wss) to one route, holds them idle for S seconds, then exits.

Used by scripts/profile-idle-memory.sh to see where an idle connection's bytes go. Standard library only.
usage: hold-idle-websockets.py PORT COUNT PATH TLS(0|1) SECONDS
"""
import socket
import ssl
import sys
import time

port, count, path, tls, seconds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", float(sys.argv[5])
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # the profile's throwaway certificate
held = []
for _ in range(count):
    sock = socket.create_connection(("127.0.0.1", port))
    if tls:
        sock = context.wrap_socket(sock)
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            sys.exit(f"connection closed during the upgrade: {answer!r}")
        answer += chunk
    status = answer.split(b"\r\n", 1)[0]
    if b" 101 " not in status:
        sys.exit(f"upgrade refused: {status!r}")
    held.append(sock)
print(f"holding {len(held)} idle connections for {seconds} s", flush=True)
time.sleep(seconds)
