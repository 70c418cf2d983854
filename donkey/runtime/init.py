"""The child side of a container start: namespaces, rootfs, pty, then execve.

The child is already PID 1 of a new PID namespace (the parent unshared CLONE_NEWPID before
forking). It never returns: it either replaces itself with the container's command or
reports a structured error over the channel and exits with the matching code.
"""

from __future__ import annotations

import _signal  # signal without its enum wrappers, which cost about 4 ms to import
import _socket
import errno
import fcntl
import os
import termios

from donkey.config.container import ContainerConfig
from donkey.errors import (
    COMMAND_NOT_EXECUTABLE,
    COMMAND_NOT_FOUND,
    ENGINE_FAILURE,
    CommandNotExecutable,
    CommandNotFound,
    DonkeyError,
    InvalidArgument,
)
from donkey.hal import syscalls as sc
from donkey.network.loopback import bring_up_loopback
from donkey.runtime import rootfs
from donkey.runtime.channel import Channel
from donkey.runtime.monitor import fork_reaping_init
from donkey.runtime.paths import find_executable, home_from_passwd
from donkey.runtime.security import drop_capabilities

# Everything the child needs is imported above: after pivot_root the host's
# site-packages are out of reach, so a lazy import there would fail.

NAMESPACES = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC | sc.CLONE_NEWNET


class _Step:
    """The name of the step in progress, reported with any error."""

    name = "starting"


def child_main(config: ContainerConfig, channel: Channel, layer_dir: str, rootfs_dir: str,
               die_with_parent: bool, reaper: bool = False,
               cgroup_files: list[str] | tuple[str, ...] = ()) -> None:
    step = _Step()
    code = ENGINE_FAILURE
    try:
        _start(config, channel, layer_dir, rootfs_dir, die_with_parent, step, reaper,
               cgroup_files)
    except DonkeyError as error:
        code = error.exit_code
        _report(channel, error, step.name)
    except OSError as error:
        wrapped = DonkeyError(f"{step.name} failed: {error}", errno=error.errno)
        _report(channel, wrapped, step.name)
    except BaseException as error:  # noqa: BLE001 - the child must never unwind into the CLI
        _report(channel, DonkeyError(f"{step.name} failed: {error!r}"), step.name)
    os._exit(code)


def _report(channel: Channel, error: DonkeyError, step: str) -> None:
    try:
        channel.send_error(error, step)
    except OSError:
        pass


def _start(config, channel, layer_dir, rootfs_dir, die_with_parent, step, reaper,
           cgroup_files) -> None:
    step.name = "setting up the process"
    if die_with_parent:
        sc.prctl(sc.PR_SET_PDEATHSIG, _signal.SIGKILL)
    for signum in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT,
                   _signal.SIGUSR1, _signal.SIGUSR2, _signal.SIGWINCH, _signal.SIGPIPE):
        _signal.signal(signum, _signal.SIG_DFL)
    os.setsid()
    if not config.interactive:
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)

    step.name = "joining the container's cgroups"
    # Before the namespaces, so that the kernel charges their memory to the container.
    for path in cgroup_files:
        _join_cgroup(path)

    step.name = "creating namespaces"
    sc.unshare(NAMESPACES)

    step.name = "waiting for the parent"
    message, _ = channel.receive()
    if message is None or message.get("type") != "go":
        # The parent is gone or gave up; nothing to report to.
        os._exit(ENGINE_FAILURE)

    if os.path.exists("/proc/self/ns/cgroup"):
        step.name = "creating the cgroup namespace"
        # After joining the cgroups, so that they become the namespace's root.
        sc.unshare(sc.CLONE_NEWCGROUP)

    step.name = "setting the hostname"
    _socket.sethostname(config.hostname)

    step.name = "bringing up the loopback device"
    bring_up_loopback()

    step.name = "mounting the root filesystem"
    rootfs.make_mounts_private()
    root = rootfs.mount_root(config.storage_driver, rootfs_dir, layer_dir)

    step.name = "mounting /proc and /sys"
    rootfs.mount_proc_and_sys(root)

    step.name = "populating /dev"
    rootfs.mount_dev(root)

    step.name = "bind mounting volumes"
    rootfs.bind_mounts(root, config.mounts)

    step.name = "masking kernel paths"
    rootfs.mask_paths(root)

    step.name = "pivot_root into the container root"
    rootfs.enter_root(root)

    if config.tty:
        step.name = "allocating the pty"
        _set_up_pty(channel)

    step.name = "building the environment"
    env = _environment(config)

    step.name = "dropping capabilities"
    drop_capabilities()

    step.name = f"changing to the working directory {config.workdir}"
    try:
        os.makedirs(config.workdir, exist_ok=True)
        os.chdir(config.workdir)
    except (FileExistsError, NotADirectoryError):
        raise InvalidArgument(f"working directory {config.workdir} exists in the container "
                              "but is not a directory: pick another -w",
                              path=config.workdir) from None

    if reaper:
        step.name = "starting the reaping init (--init)"
        fork_reaping_init(channel, config.tty)

    step.name = f"starting {config.command[0]}"
    _close_inherited_fds(channel.fileno())
    program = find_executable(config.command[0], env.get("PATH", ""))
    _exec(program, config.command, env)


def _join_cgroup(path: str) -> None:
    """Move this thread, which is the whole process before execve, into a v1 cgroup."""
    # Not CgroupFS.write: its debug log would reach the container's own streams here.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(descriptor, b"0")
        finally:
            os.close(descriptor)
    except OSError as error:
        # Before pivot_root, so this import still reaches the host's site-packages.
        from donkey.cgroups.fs import error_from_os

        raise error_from_os("write", path, error, "0") from None


def _set_up_pty(channel: Channel) -> None:
    """Open a pty in the container's own devpts and hand its master to the parent.

    The pty comes from the container's devpts instance, so `tty` inside prints a name
    that exists there, and /dev/console is the same terminal as runc makes it.
    """
    master, slave = os.openpty()
    console = "/dev/console"
    with open(console, "a"):
        pass
    sc.mount(os.ttyname(slave), console, None, sc.MS_BIND)

    channel.send({"type": "pty"}, [master])
    os.close(master)
    reply, _ = channel.receive()
    if reply is None or reply.get("type") != "pty-ack":
        os._exit(ENGINE_FAILURE)

    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def _environment(config: ContainerConfig) -> dict[str, str]:
    env = {}
    for item in config.env:
        key, _, value = item.partition("=")
        env[key] = value
    if "HOME" not in env:
        try:
            with open("/etc/passwd", encoding="utf-8", errors="replace") as stream:
                env["HOME"] = home_from_passwd(stream.read()) or "/"
        except OSError:
            env["HOME"] = "/"
    return env


def _close_inherited_fds(keep: int) -> None:
    # Descriptors the caller of donkey left open without close-on-exec would otherwise
    # reach the container's command.
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)


def _exec(program: str, argv: list[str], env: dict[str, str]) -> None:
    try:
        os.execve(program, argv, env)
    except OSError as error:
        if error.errno == errno.ENOENT:
            raise CommandNotFound(
                f"cannot run {argv[0]}: {program} or its interpreter does not exist "
                "in the container",
                path=program, errno=error.errno, exit_code=COMMAND_NOT_FOUND,
            ) from None
        if error.errno in (errno.EACCES, errno.ENOEXEC, errno.EPERM):
            raise CommandNotExecutable(
                f"cannot run {argv[0]}: {error.strerror} ({program})",
                path=program, errno=error.errno, exit_code=COMMAND_NOT_EXECUTABLE,
            ) from None
        raise
