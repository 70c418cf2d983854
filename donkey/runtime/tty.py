"""The caller's terminal and the container's pty: raw mode, copying both ways, window size."""

from __future__ import annotations

import _signal  # signal without its enum wrappers, which cost about 4 ms to import
import errno
import fcntl
import os
import select
import termios
import tty

_CHUNK = 65536


def copy_window_size(source_fd: int, target_fd: int) -> None:
    try:
        size = fcntl.ioctl(source_fd, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(target_fd, termios.TIOCSWINSZ, size)
    except OSError:
        # The caller's stdin is not a terminal: the pty keeps its default size.
        pass


def _write_all(fd: int, data: bytes) -> None:
    while data:
        written = os.write(fd, data)
        data = data[written:]


class RawTerminal:
    """Put the caller's terminal in raw mode; restore it on exit, whatever the exit path.

    In raw mode Ctrl-C and Ctrl-D are plain bytes that reach the container's pty, whose own
    line discipline turns them into SIGINT and end-of-file, as under Docker.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved = None

    def __enter__(self) -> RawTerminal:
        if os.isatty(self.fd):
            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd, termios.TCSANOW)
        return self

    def __exit__(self, *exc_info) -> None:
        if self.saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


def relay(master: int, interactive: bool, stdin_fd: int = 0, stdout_fd: int = 1) -> None:
    """Copy stdin to the pty master and the master to stdout until the container's side closes.

    Input is buffered and written only when the master is writable, so a container that
    does not read its input cannot block its own output.
    """
    previous = _signal.signal(_signal.SIGWINCH,
                              lambda *_: copy_window_size(stdin_fd, master))
    os.set_blocking(master, False)
    pending = b""
    reading_stdin = interactive
    try:
        while True:
            readers = [master]
            if reading_stdin and len(pending) < _CHUNK:
                readers.append(stdin_fd)
            writers = [master] if pending else []
            readable, writable, _ = select.select(readers, writers, [])

            if master in readable:
                try:
                    data = os.read(master, _CHUNK)
                except OSError as error:
                    # EIO: every slave descriptor is closed, the container has exited.
                    if error.errno in (errno.EIO, errno.EAGAIN):
                        if error.errno == errno.EIO:
                            return
                        data = None
                    else:
                        raise
                if data == b"":
                    return
                if data:
                    _write_all(stdout_fd, data)

            if stdin_fd in readable:
                data = os.read(stdin_fd, _CHUNK)
                if data:
                    pending += data
                else:
                    # End of a non-terminal stdin: send the pty's end-of-file character.
                    pending += b"\x04"
                    reading_stdin = False

            if master in writable and pending:
                try:
                    written = os.write(master, pending)
                    pending = pending[written:]
                except BlockingIOError:
                    pass
    finally:
        _signal.signal(_signal.SIGWINCH, previous)
