"""The monitor of a detached container: it starts the container and outlives the CLI.

`run_detached` double-forks, so the monitor is in its own session and no child of the CLI,
and execs a fresh interpreter with `-I -S`, so none of the CLI's modules (click and the
rest) stay in its memory. The monitor runs in two phases, each a fresh execve of the same
process, so the container's init stays its child across both:

1. start: import the engine, call spawn.start() with pipes (or the pty) as the container's
   stdio, and report "started" or the error to the CLI over a pipe.
2. watch: with only os, select, json, time and donkey.logs.container imported, copy the
   container's output into its JSON-lines log and reap its init. Then import the engine
   again to record the exit with spawn.finish() (and honour --rm and --restart).

The engine log of the monitor goes to monitor.log in the container's state directory.
"""

from __future__ import annotations

import os
import select
import sys
import time

from donkey import jsontext

MONITOR_LOG = "monitor.log"
# state.error of a container that donkey stop or kill ended, which --restart leaves down.
STOPPED_BY_USER = "stopped by user"

_READ_CHUNK = 65536
# How often the watch loop checks the init's status when the kernel has no pidfd (< 5.3).
_POLL_SECONDS = 1.0


def run_detached(engine, state, resources=None, restart: bool = False) -> None:
    """Start the container under a new monitor and return once its command runs.

    Raises the DonkeyError the start failed with, with its exit code (125, 126, 127).
    resources is not passed on: the monitor rebuilds it from the saved configuration.
    restart starts a stopped container again, on its existing layer.
    """
    from donkey.errors import DonkeyError
    from donkey.logs import engine as engine_logs

    read_end, write_end = os.pipe()
    spec = {
        "engine": {"root": engine.root, "data_root": engine.data_root,
                   "cgroup_parent": engine.cgroup_parent,
                   "storage_driver": engine.storage_driver},
        "id": state.id,
        "report_fd": write_end,
        "restart": restart,
        "log_level": engine_logs.level_name(),
    }
    pid = os.fork()
    if pid == 0:
        _become_monitor(read_end, write_end, spec)
    os.close(write_end)
    os.waitpid(pid, 0)

    with os.fdopen(read_end, "rb") as report:
        data = report.read()
    message = jsontext.loads(data) if data else None
    if message is None:
        raise DonkeyError(
            f"the monitor of container {state.name} exited before it reported a start: "
            f"see {os.path.join(engine.root, state.id, MONITOR_LOG)}, then remove the "
            f"container with donkey rm -f {state.name}")
    if message.get("error"):
        raise DonkeyError(message["error"], exit_code=message.get("code") or 125)


def _become_monitor(read_end: int, write_end: int, spec: dict) -> None:
    """In the forked CLI: setsid, fork again, and exec the monitor's start phase."""
    try:
        os.close(read_end)
        os.setsid()
        if os.fork() != 0:
            os._exit(0)

        devnull = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        os.set_inheritable(write_end, True)
        _close_other_fds([write_end])
        _exec_phase("start", spec)
    except BaseException:  # noqa: BLE001 - a forked CLI must never return into click
        os._exit(125)


def _close_other_fds(keep: list[int]) -> None:
    start = 3
    for fd in sorted(keep):
        os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, 65536)


def _exec_phase(phase: str, spec: dict) -> None:
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # -I -S: no site-packages scan, no environment variables, no user directory; the
    # package's own parent directory is the only import path added.
    bootstrap = (f"import sys; sys.path.insert(0, {package_parent!r}); "
                 "from donkey.runtime.monitor import main; main(sys.argv[1:])")
    os.execv(sys.executable,
             [sys.executable, "-I", "-S", "-c", bootstrap, phase, jsontext.dumps(spec)])


def main(argv: list[str]) -> None:
    phase, spec = argv[0], jsontext.loads(argv[1])
    if phase == "start":
        _start_phase(spec)
    elif phase == "watch":
        _watch_phase(spec)
    os._exit(0)


def _report(spec: dict, message: dict) -> None:
    fd = spec.pop("report_fd", None)
    if fd is None:
        return
    try:
        os.write(fd, jsontext.dumps(message).encode())
    except OSError:
        # The CLI was killed while it waited, so no process reads the report.
        pass
    os.close(fd)


def _start_phase(spec: dict) -> None:
    from donkey.cgroups.resources import Resources
    from donkey.errors import DonkeyError
    from donkey.logs.engine import configure, get_logger, shutdown
    from donkey.runtime import spawn
    from donkey.runtime.engine import Engine
    from donkey.runtime.state import own_start_time

    engine = Engine(**spec["engine"])
    configure(spec.get("log_level") or "warning", "json",
              os.path.join(engine.root, spec["id"], MONITOR_LOG))
    log = get_logger("monitor")

    try:
        state = engine.states.load(spec["id"])
    except DonkeyError as error:
        _report(spec, {"error": str(error), "code": error.exit_code})
        return
    config = state.config
    state.monitor_pid = os.getpid()
    state.monitor_start_time = own_start_time()
    try:
        # Saved at once: garbage collection must not take a container that a live monitor
        # is starting for a CLI that was killed meanwhile.
        engine.states.save(state)
    except OSError as error:
        # The container was removed meanwhile (donkey rm -f).
        _report(spec, {"error": f"container {state.name} was removed while it started: "
                                f"{error.strerror}", "code": 125})
        return
    resources = Resources(**config.resources) if config.resources else None

    stdin_read = stdin_write = None
    stdout_read = stdout_write = stderr_read = stderr_write = None
    stdio = None
    if not config.tty:
        stdout_read, stdout_write = os.pipe()
        stderr_read, stderr_write = os.pipe()
        if config.interactive:
            # As docker run -di: stdin stays open, and empty, for as long as the monitor runs.
            stdin_read, stdin_write = os.pipe()
        stdio = (stdin_read, stdout_write, stderr_write)

    try:
        started = spawn.start(engine, state, resources, die_with_parent=False, stdio=stdio,
                              reuse_layer=bool(spec.get("restart")))
    except DonkeyError as error:
        log.error("starting container %s failed: %s", state.id, error)
        _report(spec, {"error": str(error), "code": error.exit_code})
        return
    except Exception as error:  # noqa: BLE001 - reported to the CLI, which prints it
        log.exception("starting container %s failed", state.id)
        _report(spec, {"error": f"starting container {state.name} failed: {error!r}",
                       "code": 125})
        return
    finally:
        for fd in (stdin_read, stdout_write, stderr_write):
            if fd is not None:
                os.close(fd)

    state.log_path = engine.log_path(state.id)
    # Created before the CLI prints the id, so a `logs -f` right after `run -d` finds it.
    os.close(os.open(state.log_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o640))
    engine.states.save(state)
    log.info("container %s started, init pid %d", state.id, state.pid)

    if started.master is not None:
        outputs = {"stdout": started.master}
    else:
        outputs = {"stdout": stdout_read, "stderr": stderr_read}
    keep = list(outputs.values()) + ([stdin_write] if stdin_write is not None else [])
    for fd in keep:
        os.set_inheritable(fd, True)
    if started.cgroup is not None:
        started.cgroup.close()

    _report(spec, {"started": True})
    watch = {
        "engine": spec["engine"],
        "id": state.id,
        "pid": state.pid,
        "outputs": outputs,
        "stdin": stdin_write,
        "log_path": state.log_path,
        "log_level": spec.get("log_level"),
    }
    shutdown()
    _close_other_fds(keep)
    _exec_phase("watch", watch)


def _watch_phase(spec: dict) -> None:
    from donkey.logs.container import STDERR, STDOUT, LineSplitter, LogWriter

    pid = spec["pid"]
    writer = LogWriter.open(spec["log_path"])
    streams = {fd: name for name, fd in spec["outputs"].items()}
    splitters = {fd: LineSplitter(STDERR if name == "stderr" else STDOUT)
                 for fd, name in streams.items()}
    exit_watch = _open_pidfd(pid)

    status = None
    while splitters and status is None:
        readers = list(splitters) + ([exit_watch] if exit_watch is not None else [])
        readable, _, _ = select.select(readers, [], [], None if exit_watch else _POLL_SECONDS)
        for fd in readable:
            if fd == exit_watch:
                continue
            _copy_output(fd, splitters, writer)
        status = _reap(pid)

    # The init is gone, so the kernel killed the rest of its PID namespace; what they
    # wrote is still in the pipes.
    for fd in list(splitters):
        while fd in splitters:
            _copy_output(fd, splitters, writer)
    writer.close()
    if spec.get("stdin") is not None:
        os.close(spec["stdin"])
    if status is None:
        _, status = os.waitpid(pid, 0)

    _record_exit(spec, status)


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _reap(pid: int) -> int | None:
    reaped, status = os.waitpid(pid, os.WNOHANG)
    return status if reaped == pid else None


def _copy_output(fd: int, splitters: dict, writer) -> None:
    splitter = splitters[fd]
    try:
        data = os.read(fd, _READ_CHUNK)
    except OSError:
        # EIO on a pty master: every slave descriptor is closed.
        data = b""
    if data:
        writer.write_lines(splitter.feed(data), splitter.stream)
        return
    writer.write_lines(splitter.flush(), splitter.stream)
    os.close(fd)
    del splitters[fd]


def _record_exit(spec: dict, status: int) -> None:
    from donkey.errors import DonkeyError
    from donkey.logs.engine import configure, get_logger
    from donkey.runtime import spawn
    from donkey.runtime.engine import Engine

    engine = Engine(**spec["engine"])
    state_dir = os.path.join(engine.root, spec["id"])
    configure(spec.get("log_level") or "warning", "json", os.path.join(state_dir, MONITOR_LOG))
    log = get_logger("monitor")
    try:
        state = engine.states.load(spec["id"])
    except DonkeyError as error:
        log.warning("recording the exit of container %s failed: %s", spec["id"], error)
        return

    manager = None
    try:
        manager = engine.cgroup_manager()
    except DonkeyError as error:
        log.warning("loading the cgroup of container %s failed: %s", state.id, error)
    cgroup = manager.load(state.id) if manager is not None else None
    log.info("container %s exited with wait status %d", state.id, status)
    try:
        spawn.finish(engine, spawn.Started(state, None, cgroup), status)
    except (DonkeyError, OSError) as error:
        log.error("recording the exit of container %s failed: %s", state.id, error)
        return

    if not should_restart(state.restart_policy, state.exit_code, state.restart_count,
                          stopped_by_user=state.error == STOPPED_BY_USER):
        return
    delay = min(0.1 * 2 ** state.restart_count, 60.0)
    log.info("restarting container %s (policy %s) in %.1f s", state.id,
             state.restart_policy, delay)
    time.sleep(delay)
    try:
        state = engine.states.load(state.id)
    except DonkeyError:
        return  # removed while waiting
    if state.error == STOPPED_BY_USER:
        return
    state.restart_count += 1
    engine.states.save(state)
    from donkey.logs import engine as engine_logs

    engine_logs.shutdown()
    _exec_phase("start", {"engine": spec["engine"], "id": state.id, "restart": True,
                          "log_level": spec.get("log_level")})


# ---- restart ----------------------------------------------------------------------------

def parse_restart_policy(value: str) -> str:
    """Check a --restart value: no, always, unless-stopped, on-failure or on-failure:N."""
    from donkey.errors import InvalidArgument

    name, _, count = value.partition(":")
    valid = name in ("no", "always", "unless-stopped", "on-failure")
    if valid and count:
        valid = name == "on-failure" and count.isdigit() and int(count) > 0
    if not valid:
        raise InvalidArgument(f"invalid --restart {value!r}: use no, always, unless-stopped, "
                              "on-failure or on-failure:N with N > 0", value=value)
    return value


def should_restart(policy: str, exit_code: int | None, restart_count: int,
                   stopped_by_user: bool) -> bool:
    """Apply Docker's restart policies to a container that just exited."""
    name, _, count = policy.partition(":")
    if name == "no" or stopped_by_user:
        return False
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure" and exit_code:
        return not count or restart_count < int(count)
    return False


def restart_detached(engine, state, timeout: float = 10.0) -> None:
    """Stop the container as donkey stop does, then start it again under a new monitor."""
    from donkey.runtime.engine import stop
    from donkey.runtime.state import CREATED

    auto_remove = state.config.auto_remove
    if state.restart_policy != "no" or auto_remove:
        # Keeps the old monitor from starting the container again, or from removing a
        # --rm container, when the stop ends it.
        state.error = STOPPED_BY_USER if state.restart_policy != "no" else state.error
        state.config.auto_remove = False
        engine.states.save(state)
    stop(engine, state, timeout)
    state = engine.states.load(state.id)
    state.config.auto_remove = auto_remove
    state.status = CREATED
    state.exit_code = None
    state.oom_killed = False
    state.error = ""
    engine.states.save(state)
    run_detached(engine, state, restart=True)


# ---- --init: a reaping init as PID 1 of the container ----------------------------------

# The signals the reaping init passes on to the command, as tini does by default.
_FORWARDED_SIGNALS = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2",
                      "SIGWINCH", "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGALRM")
_PR_SET_DUMPABLE = 4


def _replace_command_line(title: bytes) -> None:
    """Overwrite this process's argv and environment strings with title and zero bytes.

    /proc/PID/cmdline and /proc/PID/environ are read from that memory, so without this
    PID 1 would show the caller's whole donkey command line (with any -e values) and the
    caller's environment to the container. The addresses come from /proc/self/stat
    (fields 48 to 51, since Linux 3.5); Python keeps its own copies of both.
    """
    import ctypes

    with open("/proc/self/stat", "rb") as stream:
        data = stream.read()
    fields = data[data.rindex(b")") + 2:].split()
    # fields[0] is field 3 (state), so field N is fields[N - 3].
    arg_start, _, _, env_end = (int(value) for value in fields[45:49])
    if not arg_start or env_end <= arg_start:
        return
    ctypes.memset(arg_start, 0, env_end - arg_start)
    ctypes.memmove(arg_start, title, min(len(title), env_end - arg_start - 1))


def fork_reaping_init(channel, tty: bool) -> None:
    """Fork the command's process and stay behind as PID 1 that reaps and forwards signals.

    Returns in the child only, which goes on to exec the command. The parent, PID 1 of the
    container, reaps every orphan the kernel hands to it, forwards signals to the command,
    and exits with the command's exit code (128+N after signal N). init.py calls this
    after pivot_root, so everything used here is loaded before: _signal is built into the
    interpreter and donkey.hal.syscalls is imported by init.py.
    """
    import _signal

    from donkey.hal import syscalls as sc

    # PID 1 stays a host Python process: a process that is not dumpable cannot have its
    # /proc/1/exe or memory opened without CAP_SYS_PTRACE, which containers lack.
    sc.prctl(_PR_SET_DUMPABLE, 0)
    child = 0

    def forward(signum, _frame):
        if child:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    forwarded = [getattr(_signal, name) for name in _FORWARDED_SIGNALS]
    for signum in forwarded:
        _signal.signal(signum, forward)
    child = os.fork()
    if child == 0:
        for signum in forwarded:
            _signal.signal(signum, _signal.SIG_DFL)
        if tty:
            # Give the command its own process group in the foreground of the pty, so the
            # terminal's Ctrl-C reaches it and not PID 1.
            os.setpgid(0, 0)
            previous = _signal.signal(_signal.SIGTTOU, _signal.SIG_IGN)
            try:
                os.tcsetpgrp(0, os.getpgrp())
            except OSError:
                pass
            _signal.signal(_signal.SIGTTOU, previous)
        return

    # The command's end of the channel closes on execve; PID 1 must not hold a copy.
    channel.close()
    os.closerange(3, 65536)
    _replace_command_line(b"donkey-init")
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)
