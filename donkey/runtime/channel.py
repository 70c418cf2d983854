"""The parent/child channel: JSON messages, and file descriptors, over a SEQPACKET socket pair.

SOCK_SEQPACKET keeps message boundaries, so each send is one JSON object. The child's end
is close-on-exec: when the container's command starts, the parent reads end-of-file, which
is how it learns that execve succeeded.

The channel uses the `_socket` extension module directly: `socket` adds enum wrappers and
`selectors`, about 3 ms of imports on every start, and the channel needs none of them.
"""

from __future__ import annotations

import _socket
import struct

from donkey import jsontext
from donkey.errors import DonkeyError

_MAX_MESSAGE = 65536
_MAX_FDS = 4
# SCM_RIGHTS data is an array of C ints.
_FD_SIZE = struct.calcsize("i")


class Channel:
    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        return cls(parent), cls(child)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: dict, fds: list[int] | None = None) -> None:
        data = jsontext.dumps(message).encode()
        if fds:
            rights = struct.pack(f"{len(fds)}i", *fds)
            self.sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
        else:
            self.sock.sendall(data)

    def receive(self) -> tuple[dict | None, list[int]]:
        """Return the next message and any descriptors with it; (None, []) at end of file."""
        data, ancillary, _, _ = self.sock.recvmsg(_MAX_MESSAGE,
                                                  _socket.CMSG_LEN(_MAX_FDS * _FD_SIZE))
        fds = []
        for level, kind, payload in ancillary:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                # A truncated message can end in part of an int: drop the partial one.
                whole = len(payload) - len(payload) % _FD_SIZE
                fds.extend(fd for (fd,) in struct.iter_unpack("i", payload[:whole]))
        if not data:
            return None, fds
        return jsontext.loads(data), fds

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
