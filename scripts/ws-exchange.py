#!/usr/bin/env python3
"""Sends one text message on a WebSocket and reads text frames until every expected string has been seen.

Standard library only (CI checks built plugins with it before anything is installed from PyPI). Exits 0 when all
were seen, 1 with what was read otherwise (a close, or 10 s without them; WS_EXCHANGE_SECONDS sets that).
usage: ws-exchange.py PORT PATH MESSAGE EXPECTED [EXPECTED ...]
"""
import os
import socket
import struct
import sys
import time

from websocket_upgrade import upgrade

port, path, message, expected = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
seconds = float(os.environ.get("WS_EXCHANGE_SECONDS", "10"))
sock = socket.create_connection(("127.0.0.1", port), timeout=seconds)
buffer = upgrade(sock, path)

payload = message.encode()
mask = os.urandom(4)
header = bytes([0x81]) + (bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 126]) + struct.pack("!H", len(payload)))
sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def read(count):
    global buffer
    while len(buffer) < count:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError
        buffer += chunk
    data, buffer = buffer[:count], buffer[count:]
    return data


seen, texts, deadline = set(), [], time.time() + seconds
try:
    while time.time() < deadline and len(seen) < len(expected):
        first, second = read(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", read(8))[0]
        data = read(length)
        if first & 0x0F == 0x8:
            texts.append(f"<close {data[:2].hex()} {data[2:]!r}>")
            break
        if first & 0x0F == 0x1:
            text = data.decode()
            texts.append(text)
            seen.update(e for e in expected if e in text)
except (EOFError, socket.timeout):
    texts.append("<connection ended>")
if len(seen) < len(expected):
    sys.exit(f"{path}: never saw {[e for e in expected if e not in seen]}; read: {texts}")
print(f"{path}: {message!r} -> {texts[-1][:100]!r}")
