"""The client side of a WebSocket upgrade, for the standard-library-only scripts beside it (no PyPI needed)."""
import sys


def upgrade(sock, path):
    """Sends the upgrade request for `path` and reads the answer; exits with the reason unless it is 101.

    Returns the bytes read past the answer's headers (frames the server sent at once)."""
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            sys.exit(f"{path}: connection closed during the upgrade: {answer!r}")
        answer += chunk
    head, rest = answer.split(b"\r\n\r\n", 1)
    status = head.split(b"\r\n", 1)[0]
    if b" 101 " not in status:
        sys.exit(f"{path}: upgrade refused: {status!r}")
    return rest
