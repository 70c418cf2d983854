"""The network a container gets today: its own namespace with the loopback device up."""

from __future__ import annotations

import _socket
import fcntl
import struct

from donkey.errors import SyscallError

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def bring_up_loopback() -> None:
    """Set IFF_UP on lo in the current network namespace (a new one starts with lo down)."""
    # _socket rather than socket: see donkey.runtime.channel.
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        request = struct.pack("16sH14x", b"lo", 0)
        try:
            reply = fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, request)
            flags = struct.unpack("16sH14x", reply)[1]
            fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo",
                                                                  flags | _IFF_UP))
        except OSError as error:
            raise SyscallError(f"bringing up lo failed: {error.strerror}",
                               errno=error.errno) from None
    finally:
        sock.close()
