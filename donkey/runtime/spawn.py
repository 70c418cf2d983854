"""The parent side of a container start, and the foreground run that waits for it.

Process model: the parent unshares CLONE_NEWPID for its children only, forks, and restores
its own pid_for_children with setns. The child is PID 1 of the new PID namespace and a direct
child of the parent, so waitpid returns its real status. The child joins its v1 cgroups,
unshares the other namespaces and blocks on the channel until the parent has saved the state
and moved it into its cgroup2 directory, if any; then it builds its rootfs and execs. The
child's errors come back over the channel as JSON.
"""

from __future__ import annotations

import _signal  # signal without its enum wrappers, which cost about 4 ms to import
import os
import time

from donkey.config.container import ContainerConfig
from donkey.errors import DonkeyError
from donkey.hal import syscalls as sc
from donkey.logs.engine import INFO, LEVEL_VALUES, get_logger
from donkey.record import Record
from donkey.runtime.channel import Channel
from donkey.runtime.engine import Engine
from donkey.runtime.paths import remove_tree
from donkey.runtime.state import (
    EXITED,
    RUNNING,
    ContainerState,
    own_start_time,
    process_start_time,
)

log = get_logger("spawn")

# Signals a foreground run passes on to the container, as docker run's --sig-proxy does.
PROXIED_SIGNALS = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT,
                   _signal.SIGUSR1, _signal.SIGUSR2)


class Started(Record):
    FIELDS = ("state", "master", "cgroup")

    def __init__(self, state: ContainerState, master: int | None,
                 cgroup: object | None) -> None:
        self.state = state
        self.master = master
        self.cgroup = cgroup


def exit_code_from_status(status: int) -> int:
    """Map a wait status to a shell-style exit code: 128+N for death by signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _prepare_layer(engine: Engine, config: ContainerConfig, reuse: bool = False) -> str:
    layer = engine.layer_dir(config.id)
    if reuse and os.path.isdir(layer):
        # A restart keeps the container's writable layer, as Docker does.
        return layer
    os.makedirs(layer, mode=0o700)
    if config.storage_driver == "overlay":
        for name in ("upper", "work", "merged"):
            os.mkdir(os.path.join(layer, name), 0o755)
    else:
        # Imported here: only the vfs driver needs it, and every start would pay for it.
        import subprocess

        log.debug("copying %s into %s", config.rootfs, layer)
        subprocess.run(["cp", "-a", "-T", config.rootfs, os.path.join(layer, "rootfs")],
                       check=True)
    return layer


def fork_in_pid_namespace(enter_namespace) -> int:
    """Fork a child into the PID namespace that enter_namespace() sets for our children.

    enter_namespace unshares or setns with CLONE_NEWPID, which changes only
    pid_for_children. Afterwards the parent restores its own, so its later forks (cp,
    mount helpers) stay in the host's PID namespace. Returns 0 in the child, as fork does.
    """
    own_namespace = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        enter_namespace()
        pid = os.fork()
        if pid == 0:
            # The child is in the new namespace already and cannot go back.
            os.close(own_namespace)
            own_namespace = None
        return pid
    finally:
        if own_namespace is not None:
            try:
                sc.setns(own_namespace, sc.CLONE_NEWPID)
            finally:
                os.close(own_namespace)


def start(engine: Engine, state: ContainerState, resources=None,
          die_with_parent: bool = True,
          stdio: tuple[int | None, int | None, int | None] | None = None,
          reuse_layer: bool = False) -> Started:
    """Start the container described by state and return once its command runs.

    stdio gives descriptors to become the container's stdin, stdout and stderr (None keeps
    the caller's); a tty replaces all three with the pty. On any failure everything
    created for it is removed before the error propagates, except that with reuse_layer
    (a restart) the layer and state stay, recorded as exited with the error.
    """
    config = state.config
    cgroup = None
    pid = 0
    parent_end = None
    try:
        layer = _prepare_layer(engine, config, reuse_layer)
        state.data_dir = layer

        manager = engine.cgroup_manager()
        if manager is not None:
            cgroup = manager.create(config.id)
            state.cgroup_paths = dict(cgroup.paths)
            for warning in cgroup.apply(resources) if resources is not None else []:
                log.warning("%s", warning)
            if getattr(resources, "memory", None) and _kernel_lacks_oom_counter(manager):
                # Before 4.13, v1 memory.oom_control has no oom_kill line: count kills
                # with an eventfd registered before the command starts.
                cgroup.watch_oom()

        # The child joins its v1 cgroups itself, because that skips a 10 to 15 ms kernel wait
        # (see Cgroup.self_join_files). The parent still moves it into cgroup2.
        join_files = cgroup.self_join_files() if cgroup is not None else []
        parent_end, child_end = Channel.pair()

        def child() -> None:
            parent_end.close()
            for target, source in enumerate(stdio or ()):
                if source is not None:
                    os.dup2(source, target)
            from donkey.runtime.init import child_main

            child_main(config, child_end, layer, config.rootfs, die_with_parent,
                       reaper=state.init, cgroup_files=join_files)

        pid = fork_in_pid_namespace(lambda: sc.unshare(sc.CLONE_NEWPID))
        if pid == 0:
            child()
            os._exit(125)
        child_end.close()
        state.pid = pid
        state.pid_start_time = process_start_time(pid) or 0
        if not state.monitor_pid:
            # A foreground run records the exit itself, so it is the container's monitor:
            # garbage collection and rm in other processes wait for it instead of racing it.
            state.monitor_pid = os.getpid()
            state.monitor_start_time = own_start_time()
        engine.states.save(state)
        log.debug("forked container init pid %d for %s", pid, config.id)

        if cgroup is not None:
            # NOTE: on cgroup2 this write waits for an RCU grace period (10 to 15 ms).
            # clone3 with CLONE_INTO_CGROUP would avoid it, but Python 3.11 lacks it.
            cgroup.add_process(pid, v1=False)
        parent_end.send({"type": "go"})

        master = _wait_for_exec(parent_end, config, pid)
        state.status = RUNNING
        state.started_at = time.time()
        engine.states.save(state)
        return Started(state, master, cgroup)
    except BaseException as error:
        if reuse_layer:
            _abort_restart(engine, state, pid, cgroup, error)
        else:
            _abort(engine, state, pid, cgroup)
        raise
    finally:
        if parent_end is not None:
            parent_end.close()


def _kernel_lacks_oom_counter(manager) -> bool:
    info = getattr(manager, "info", None)
    version = getattr(info, "kernel_version", None)
    return bool(version) and tuple(version[:2]) < (4, 13)


def _wait_for_exec(channel: Channel, config: ContainerConfig, pid: int) -> int | None:
    """Serve the child's messages until execve closes its end; return the pty master."""
    master = None
    while True:
        message, fds = channel.receive()
        if message is None:
            return master
        kind = message.get("type")
        if kind == "log":
            log.log(_level(message.get("level")), "%s", message.get("msg"))
        elif kind == "pty":
            master = fds[0]
            from donkey.runtime.tty import copy_window_size

            copy_window_size(0, master)
            channel.send({"type": "pty-ack"})
        elif kind == "error":
            if master is not None:
                os.close(master)
            raise DonkeyError(
                message.get("message") or "container init failed",
                path=message.get("path"),
                errno=message.get("errno"),
                exit_code=message.get("code") or 125,
            )


def _level(name: str | None) -> int:
    return LEVEL_VALUES.get((name or "info").lower(), INFO)


def _abort(engine: Engine, state: ContainerState, pid: int, cgroup) -> None:
    if pid:
        try:
            os.kill(pid, _signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    _destroy_cgroup(engine, state, cgroup)
    remove_tree(engine.layer_dir(state.id))
    engine.states.remove(state.id, state.name)


def _destroy_cgroup(engine: Engine, state: ContainerState, cgroup) -> None:
    """Remove the container's cgroup, and the parent once it is empty; log a failure."""
    if cgroup is None:
        return
    try:
        cgroup.destroy()
    except DonkeyError as error:
        log.warning("removing cgroup of %s failed: %s", state.id, error)
    engine.remove_empty_cgroup_parent()


def _abort_restart(engine: Engine, state: ContainerState, pid: int, cgroup,
                   error: BaseException) -> None:
    """Undo a failed restart but keep the container, recorded as exited with the error."""
    if pid:
        try:
            os.kill(pid, _signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    _destroy_cgroup(engine, state, cgroup)
    state.status = EXITED
    state.pid = 0
    state.exit_code = getattr(error, "exit_code", 125)
    state.error = str(error)
    state.finished_at = time.time()
    engine.states.save(state)


def _wait_forwarding_signals(pid: int) -> int:
    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    previous = {signum: _signal.signal(signum, forward) for signum in PROXIED_SIGNALS}
    try:
        _, status = os.waitpid(pid, 0)
    finally:
        for signum, handler in previous.items():
            _signal.signal(signum, handler)
    return status


def _wait_with_tty(started: Started, interactive: bool) -> int:
    from donkey.runtime.tty import RawTerminal, relay

    pid = started.state.pid

    def kill_container(_signum, _frame):
        # The terminal is going away or donkey is asked to stop. Without this, the
        # container's shell would run on with no terminal attached.
        try:
            os.kill(pid, _signal.SIGKILL)
        except ProcessLookupError:
            pass

    previous = {signum: _signal.signal(signum, kill_container)
                for signum in (_signal.SIGTERM, _signal.SIGHUP)}
    try:
        with RawTerminal(0) if interactive else _NullContext():
            relay(started.master, interactive)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(started.master)
        for signum, handler in previous.items():
            _signal.signal(signum, handler)
    return status


class _NullContext:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None


def run_foreground(engine: Engine, state: ContainerState, resources=None) -> int:
    """Start the container, attach to it until it exits, and return its exit code."""
    started = start(engine, state, resources)
    status = None
    try:
        if started.master is not None:
            status = _wait_with_tty(started, state.config.interactive)
        else:
            status = _wait_forwarding_signals(state.pid)
    except BaseException:
        try:
            os.kill(state.pid, _signal.SIGKILL)
            _, status = os.waitpid(state.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        raise
    finally:
        finish(engine, started, status)

    if state.oom_killed:
        if state.exit_code:
            log.error("%s", oom_message(state, resources))
        else:
            log.warning("%s", oom_message(state, resources, survived=True))
    return state.exit_code if state.exit_code is not None else exit_code_from_status(status)


def oom_message(state: ContainerState, resources, survived: bool = False) -> str:
    limit = getattr(resources, "memory", None)
    limit_text = f" of {_mebibytes(limit)}" if limit else ""
    peak_text = f" (peak usage {_mebibytes(state.memory_peak)})" if state.memory_peak else ""
    if survived:
        return (f"the OOM killer killed a process of container {state.name} at its memory "
                f"limit{limit_text}{peak_text}, and the container still exited 0")
    return (f"container {state.name} was killed by the OOM killer at its memory "
            f"limit{limit_text}{peak_text}: raise the limit with -m")


def _mebibytes(count: int) -> str:
    return f"{count / 1048576:.1f} MiB"


def finish(engine: Engine, started: Started, status: int | None = None) -> None:
    """Record the exit, read the OOM count, free the cgroup, and honour --rm."""
    state = started.state
    if status is not None:
        state.exit_code = exit_code_from_status(status)
    state.status = EXITED
    state.finished_at = time.time()

    if started.cgroup is not None:
        try:
            state.oom_killed = started.cgroup.oom_kill_count() > 0
            state.memory_peak = started.cgroup.memory_peak()
            if state.oom_killed and state.exit_code:
                # The OOM killer took a process and the container then failed: when the
                # victim was a worker (stress's, say), PID 1 exits with its own code, so
                # report the failure as the OOM kill it is, 128+SIGKILL. A container that
                # survived the kill and exited 0 keeps 0, with oom_killed recorded.
                state.exit_code = 137
        except DonkeyError as error:
            log.warning("reading the OOM count of %s failed: %s", state.id, error)

    if state.config.auto_remove:
        state.pid = 0
        engine.remove(state, force=True)
        return

    _destroy_cgroup(engine, state, started.cgroup)
    state.pid = 0
    engine.states.save(state)
