"""Run a new process in a running container: its namespaces, cgroup, root and environment.

The CLI process joins the container's PID namespace for its children only, then forks. The
child starts in that namespace as a direct child of the CLI, so waitpid returns the
command's real status. The child waits until the parent has put it into the
container's cgroup, joins the other namespaces with setns (mnt last), enters the container
root through a descriptor of /proc/PID/root opened beforehand, and execs the command.
Nothing of the host stays reachable: the child is not dumpable until execve (so no process
in the container can open its /proc/PID/exe, which is the host's Python), and every
descriptor but 0, 1 and 2 is closed before execve.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import termios
from dataclasses import dataclass, field

from donkey.errors import (
    COMMAND_NOT_EXECUTABLE,
    ENGINE_FAILURE,
    CommandNotExecutable,
    CommandNotFound,
    DonkeyError,
    NotFound,
)
from donkey.hal import syscalls as sc
from donkey.logs.engine import get_logger
from donkey.runtime.channel import Channel
from donkey.runtime.paths import find_executable
from donkey.runtime.security import drop_capabilities
from donkey.runtime.spawn import (
    _wait_forwarding_signals,
    exit_code_from_status,
    fork_in_pid_namespace,
)
from donkey.runtime.tty import RawTerminal, copy_window_size, relay

# Everything the child needs is imported above: once it has joined the container's mount
# namespace, the host's site-packages are out of reach.

log = get_logger("exec")

PR_SET_DUMPABLE = 4

# Joined before the mount namespace, which must come last: after it, /proc/PID/ns of the
# host is no longer reachable by path (the descriptors opened before stay valid).
_NAMESPACES = (("ipc", sc.CLONE_NEWIPC), ("uts", sc.CLONE_NEWUTS), ("net", sc.CLONE_NEWNET),
               ("cgroup", sc.CLONE_NEWCGROUP))


@dataclass
class ExecRequest:
    command: list[str]
    env: list[tuple[str, str]] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    tty: bool = False
    interactive: bool = False
    detach: bool = False


@dataclass
class _Target:
    """Descriptors on the container, opened before the fork."""

    namespaces: list[tuple[int, int]]
    mount_namespace: int
    pid_namespace: int
    root: int

    def close(self) -> None:
        for fd, _ in self.namespaces:
            os.close(fd)
        for fd in (self.mount_namespace, self.pid_namespace, self.root):
            os.close(fd)


def _open_target(state) -> _Target:
    pid = state.pid
    opened: list[int] = []

    def open_path(path: str, flags: int = os.O_RDONLY) -> int:
        fd = os.open(path, flags | os.O_CLOEXEC)
        opened.append(fd)
        return fd

    try:
        namespaces = []
        for name, kind in _NAMESPACES:
            path = f"/proc/{pid}/ns/{name}"
            if os.path.exists(path):
                namespaces.append((open_path(path), kind))
        target = _Target(namespaces, open_path(f"/proc/{pid}/ns/mnt"),
                         open_path(f"/proc/{pid}/ns/pid"),
                         open_path(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY))
    except FileNotFoundError:
        for fd in opened:
            os.close(fd)
        raise DonkeyError(f"cannot exec in container {state.name}: its init process "
                          f"{pid} exited", exit_code=1) from None

    # The descriptors are open now: if the start time still matches, they belong to the
    # container's init and not to a process that got the same pid later.
    if not state.is_alive():
        target.close()
        raise DonkeyError(f"cannot exec in container {state.name}: it is not running",
                          exit_code=1)
    return target


def container_environment(config_env: list[str], extra: list[tuple[str, str]]) -> dict:
    env = {}
    for item in config_env:
        key, _, value = item.partition("=")
        env[key] = value
    for key, value in extra:
        env[key] = value
    return env


def exec_in_container(engine, state, request: ExecRequest) -> int:
    """Run request.command in the container and return its exit code (0 with detach)."""
    target = _open_target(state)
    env = container_environment(state.config.env, request.env)
    if request.tty:
        env.setdefault("TERM", "xterm")
    workdir = request.workdir or state.config.workdir or "/"

    cgroup = None
    manager = engine.cgroup_manager()
    if manager is not None and state.cgroup_paths:
        cgroup = manager.load(state.id)

    parent_end, child_end = Channel.pair()
    try:
        pid = fork_in_pid_namespace(
            lambda: sc.setns(target.pid_namespace, sc.CLONE_NEWPID))
        if pid == 0:
            parent_end.close()
            _child(child_end, target, request, env, workdir)
        child_end.close()
        target.close()
        log.debug("forked exec process %d in container %s", pid, state.id)
        master = _start_child(parent_end, pid, cgroup)
    except BaseException:
        parent_end.close()
        raise
    parent_end.close()

    if request.detach:
        if master is not None:
            os.close(master)
        return 0
    if master is not None:
        return exit_code_from_status(_wait_with_tty(pid, master, request.interactive))
    return exit_code_from_status(_wait_forwarding_signals(pid))


def _start_child(channel: Channel, pid: int, cgroup) -> int | None:
    """Put the child into the cgroup, let it go, and serve it until execve; return the pty."""
    try:
        if cgroup is not None:
            cgroup.add_process(pid)
        channel.send({"type": "go"})
        master = None
        while True:
            message, fds = channel.receive()
            if message is None:
                return master
            if message.get("type") == "pty":
                master = fds[0]
                copy_window_size(0, master)
                channel.send({"type": "pty-ack"})
            elif message.get("type") == "error":
                if master is not None:
                    os.close(master)
                raise DonkeyError(message.get("message") or "exec failed",
                                  path=message.get("path"), errno=message.get("errno"),
                                  exit_code=message.get("code") or COMMAND_NOT_EXECUTABLE)
    except BaseException:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        raise


def _wait_with_tty(pid: int, master: int, interactive: bool) -> int:
    try:
        with RawTerminal(0) if interactive else _NoTerminal():
            relay(master, interactive)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    return status


class _NoTerminal:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None


# ---- the child -------------------------------------------------------------------------

def _child(channel: Channel, target: _Target, request: ExecRequest, env: dict,
           workdir: str) -> None:
    code = ENGINE_FAILURE
    try:
        _enter_and_exec(channel, target, request, env, workdir)
    except DonkeyError as error:
        code = error.exit_code
        _send_error(channel, error)
    except OSError as error:
        code = COMMAND_NOT_EXECUTABLE
        _send_error(channel, DonkeyError(f"exec failed: {error}", errno=error.errno,
                                         exit_code=code))
    except BaseException as error:  # noqa: BLE001 - the child must never unwind into the CLI
        _send_error(channel, DonkeyError(f"exec failed: {error!r}"))
    os._exit(code)


def _send_error(channel: Channel, error: DonkeyError) -> None:
    try:
        channel.send_error(error, "exec")
    except OSError:
        pass


def _enter_and_exec(channel, target, request, env, workdir) -> None:
    # Until execve, /proc/PID/exe of this process is the host's Python; a process that
    # is not dumpable can only be opened through /proc by CAP_SYS_PTRACE holders.
    sc.prctl(PR_SET_DUMPABLE, 0)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                   signal.SIGPIPE, signal.SIGXFSZ, signal.SIGWINCH):
        signal.signal(signum, signal.SIG_DFL)

    message, _ = channel.receive()
    if message is None or message.get("type") != "go":
        os._exit(ENGINE_FAILURE)

    for fd, kind in target.namespaces:
        sc.setns(fd, kind)
    sc.setns(target.mount_namespace, sc.CLONE_NEWNS)
    # setns(mnt) leaves this process at the namespace's root mount, under the container's
    # pivot_root; the descriptor of /proc/PID/root is the container's real root.
    os.fchdir(target.root)
    os.chroot(".")
    os.chdir("/")

    uid, gid, groups, home = _resolve_user(request.user)
    if "HOME" not in env:
        env["HOME"] = home
    try:
        os.chdir(workdir)
    except OSError as error:
        raise DonkeyError(f"cannot change to the working directory {workdir} in the "
                          f"container: {error.strerror}; check -w", path=workdir,
                          errno=error.errno, exit_code=COMMAND_NOT_EXECUTABLE) from None

    if request.tty:
        _set_up_pty(channel)
    else:
        os.setsid()
        # A detached command gets no stream of the caller: holding the caller's pipes
        # open would keep the caller's reader waiting for their end.
        if request.detach:
            redirected = (0, 1, 2)
        elif request.interactive:
            redirected = ()
        else:
            redirected = (0,)
        if redirected:
            devnull = os.open("/dev/null", os.O_RDWR)
            for fd in redirected:
                os.dup2(devnull, fd)
            os.close(devnull)

    drop_capabilities()
    if uid is not None:
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)

    program = find_executable(request.command[0], env.get("PATH", ""))
    keep = channel.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)
    try:
        os.execve(program, request.command, env)
    except OSError as error:
        if error.errno == errno.ENOENT:
            raise CommandNotFound(f"cannot run {request.command[0]}: {program} or its "
                                  "interpreter does not exist in the container",
                                  path=program, errno=error.errno) from None
        raise CommandNotExecutable(f"cannot run {request.command[0]}: {error.strerror} "
                                   f"({program})", path=program, errno=error.errno) from None


def _set_up_pty(channel: Channel) -> None:
    """Open a pty in the container's devpts (the root is the container's now) and pass
    its master to the parent."""
    master, slave = os.openpty()
    channel.send({"type": "pty"}, [master])
    os.close(master)
    reply, _ = channel.receive()
    if reply is None or reply.get("type") != "pty-ack":
        os._exit(ENGINE_FAILURE)
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def _read_entries(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            return [line.rstrip("\n").split(":") for line in stream
                    if line.strip() and not line.startswith("#")]
    except FileNotFoundError:
        return []


def _resolve_user(spec: str | None) -> tuple[int | None, int, list[int], str]:
    """Resolve -u name|uid[:group|gid] with the container's /etc/passwd and /etc/group.

    Returns (uid, gid, supplementary groups, home); uid is None when no -u was given,
    so the process stays root.
    """
    passwd = [entry for entry in _read_entries("/etc/passwd") if len(entry) >= 7]
    if spec is None:
        home = next((entry[5] for entry in passwd if entry[2] == "0"), "/")
        return None, 0, [], home or "/"

    user, _, group = spec.partition(":")
    entry = next((item for item in passwd if item[0] == user or item[2] == user), None)
    if entry is not None:
        uid, gid, name, home = int(entry[2]), int(entry[3]), entry[0], entry[5] or "/"
    elif user.isdigit():
        uid, gid, name, home = int(user), int(user), None, "/"
    else:
        raise NotFound(f"unable to find user {user}: no matching entries in the "
                       "container's /etc/passwd; give a uid instead", value=spec,
                       exit_code=COMMAND_NOT_EXECUTABLE)

    groups_file = [item for item in _read_entries("/etc/group") if len(item) >= 3]
    if group:
        match = next((item for item in groups_file if group in (item[0], item[2])), None)
        if match is not None:
            gid = int(match[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise NotFound(f"unable to find group {group}: no matching entries in the "
                           "container's /etc/group; give a gid instead", value=spec,
                           exit_code=COMMAND_NOT_EXECUTABLE)
    supplementary = [gid]
    if name is not None:
        for item in groups_file:
            members = item[3].split(",") if len(item) > 3 else []
            if name in members and int(item[2]) not in supplementary:
                supplementary.append(int(item[2]))
    return uid, gid, supplementary, home
