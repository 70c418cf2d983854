"""Path resolution inside a container root, done the way the container will see it."""

from __future__ import annotations

import errno
import os
import stat

from donkey.errors import CommandNotExecutable, CommandNotFound, InvalidArgument

_MAX_SYMLINKS = 255


def secure_join(root: str, unsafe_path: str) -> str:
    """Resolve unsafe_path as if root were '/', and return the host path inside root.

    Each symlink is read and followed with root as its '/', and '..' never climbs above
    root, so a symlink in the image such as /data -> /etc cannot point a bind mount or a
    write at the host's /etc. Components that do not exist are kept as they are.
    """
    root = os.path.abspath(root)
    pending = [part for part in unsafe_path.split("/") if part]
    pending.reverse()
    resolved: list[str] = []
    links_followed = 0

    while pending:
        part = pending.pop()
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue

        candidate = os.path.join(root, *resolved, part)
        try:
            mode = os.lstat(candidate).st_mode
        except FileNotFoundError:
            resolved.append(part)
            continue
        except NotADirectoryError:
            resolved.append(part)
            continue

        if not stat.S_ISLNK(mode):
            resolved.append(part)
            continue

        links_followed += 1
        if links_followed > _MAX_SYMLINKS:
            raise InvalidArgument(
                f"too many symbolic links while resolving {unsafe_path} in {root}",
                path=unsafe_path,
            )
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        parts = [item for item in target.split("/") if item]
        pending.extend(reversed(parts))

    return os.path.join(root, *resolved)


def find_executable(command: str, path_env: str) -> str:
    """Look command up the way execvp does, in the current root.

    Raises CommandNotFound (exit 127) or CommandNotExecutable (exit 126) with a message
    that names the command, as Docker reports them.
    """
    if not command:
        raise InvalidArgument("empty command: give the program to run after the image name")

    if "/" in command:
        _check_executable(command, command)
        return command

    denied = None
    for directory in path_env.split(":"):
        candidate = os.path.join(directory or ".", command)
        try:
            mode = os.stat(candidate).st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode):
            continue
        if os.access(candidate, os.X_OK):
            return candidate
        denied = candidate

    if denied is not None:
        raise CommandNotExecutable(
            f"permission denied: {command} ({denied}) is not executable in the container",
            path=denied,
            errno=errno.EACCES,
        )
    raise CommandNotFound(
        f"executable file not found in $PATH: {command} "
        f"(container PATH={path_env})",
        path=command,
        errno=errno.ENOENT,
    )


def _check_executable(path: str, command: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CommandNotFound(
            f"no such file or directory: {command} does not exist in the container",
            path=command,
            errno=errno.ENOENT,
        ) from None
    except OSError as error:
        raise CommandNotExecutable(
            f"cannot run {command}: {error.strerror}", path=command, errno=error.errno
        ) from None
    if stat.S_ISDIR(mode) or not os.access(path, os.X_OK):
        raise CommandNotExecutable(
            f"permission denied: {command} is not an executable file in the container",
            path=command,
            errno=errno.EACCES,
        )


def home_from_passwd(passwd_text: str, uid: int = 0) -> str | None:
    """Return the home directory of uid in /etc/passwd text, or None."""
    for line in passwd_text.splitlines():
        fields = line.split(":")
        if len(fields) < 7 or line.startswith("#"):
            continue
        if fields[2] == str(uid) and fields[5]:
            return fields[5]
    return None


def remove_tree(path: str) -> None:
    """Remove path and everything under it, ignoring errors, as rmtree(ignore_errors=True).

    shutil would do the same, but it imports bz2, lzma and zlib for its archive functions,
    about 2 ms on every `donkey run --rm`. os.fwalk works on directory descriptors and never
    follows a symbolic link, so a link that a container left in its layer cannot send the
    removal outside the tree.
    """
    try:
        for _, directories, files, dir_fd in os.fwalk(path, topdown=False):
            for name in files:
                _remove_ignoring_errors(os.unlink, name, dir_fd)
            for name in directories:
                try:
                    os.rmdir(name, dir_fd=dir_fd)
                except NotADirectoryError:
                    # fwalk lists a link to a directory among the directories, unentered.
                    _remove_ignoring_errors(os.unlink, name, dir_fd)
                except OSError:
                    pass
    except OSError:
        # fwalk raises only for path itself: it is gone, or cannot be opened.
        return
    _remove_ignoring_errors(os.rmdir, path, None)


def _remove_ignoring_errors(remove, name: str, dir_fd: int | None) -> None:
    try:
        remove(name, dir_fd=dir_fd)
    except OSError:
        # Best effort, as rmtree(ignore_errors=True) is: whatever is left stays in place.
        pass
