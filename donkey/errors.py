"""The exception tree every donkey module raises from.

The CLI turns a DonkeyError into one line on stderr and its exit_code. The codes follow
Docker's: 125 when donkey itself failed, 126 when the command was found but could not be
run, 127 when the command was not found.
"""

from __future__ import annotations

ENGINE_FAILURE = 125
COMMAND_NOT_EXECUTABLE = 126
COMMAND_NOT_FOUND = 127


class DonkeyError(Exception):
    """An error with a message fit for the user and the exit code it maps to."""

    exit_code = ENGINE_FAILURE

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        value: object = None,
        errno: int | None = None,
        exit_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.value = value
        self.errno = errno
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class InvalidArgument(DonkeyError):
    """A flag, value or file given by the user is malformed."""


class NotFound(DonkeyError):
    """A container, image or file the user named does not exist."""


class Conflict(DonkeyError):
    """The request clashes with existing state, such as a container name in use."""


class SyscallError(DonkeyError):
    """A system call failed; carries the errno and the path involved."""


class CommandNotFound(DonkeyError):
    exit_code = COMMAND_NOT_FOUND


class CommandNotExecutable(DonkeyError):
    exit_code = COMMAND_NOT_EXECUTABLE
