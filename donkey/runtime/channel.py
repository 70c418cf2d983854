"""The parent/child channel: JSON messages, and file descriptors, over a SEQPACKET socket pair.

SOCK_SEQPACKET keeps message boundaries, so each send is one JSON object. The child's end
is close-on-exec: when the container's command starts, the parent reads end-of-file, which
is how it learns that execve succeeded.
"""

from __future__ import annotations

import json
import socket

from donkey.errors import DonkeyError

_MAX_MESSAGE = 65536


class Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        return cls(parent), cls(child)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: dict, fds: list[int] | None = None) -> None:
        data = json.dumps(message).encode()
        if fds:
            socket.send_fds(self.sock, [data], fds)
        else:
            self.sock.sendall(data)

    def receive(self) -> tuple[dict | None, list[int]]:
        """Return the next message and any descriptors with it; (None, []) at end of file."""
        data, fds, _, _ = socket.recv_fds(self.sock, _MAX_MESSAGE, 4)
        if not data:
            return None, fds
        return json.loads(data), fds

    def send_error(self, error: DonkeyError, step: str) -> None:
        self.send({
            "type": "error",
            "step": step,
            "message": error.message,
            "code": error.exit_code,
            "errno": error.errno,
            "path": error.path,
        })

    def log(self, level: str, message: str) -> None:
        self.send({"type": "log", "level": level, "msg": message})

    def close(self) -> None:
        self.sock.close()
