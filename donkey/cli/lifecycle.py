"""Commands on running and stopped containers: ps, logs, exec, stop, kill, wait, restart,
inspect, top, stats, pause and unpause, with Docker's flags and exit codes.

A container that does not exist is exit code 1 here, as in Docker ("No such container").
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time

import click

from donkey.errors import DonkeyError, NotFound

# Docker's exit code for "no such container" and for a request the container's state
# does not allow (such as stop of a container that is not running).
REQUEST_FAILED = 1

_SETTINGS = {"help_option_names": ["--help"]}


def _lookup(engine, reference: str):
    try:
        return engine.states.lookup(reference)
    except NotFound as error:
        raise NotFound(str(error), value=reference, exit_code=REQUEST_FAILED) from None


def _require_running(state, action: str) -> None:
    from donkey.runtime.state import RUNNING

    status = state.observed_status()
    if status != RUNNING:
        fix = "unpause" if status == "paused" else "restart"
        raise DonkeyError(f"cannot {action} container {state.name}: it is not running "
                          f"(status {status}); start it with donkey {fix} {state.name}",
                          value=state.name, exit_code=REQUEST_FAILED)


def _for_each(engine, references, action) -> int:
    """Run action(state) for each reference; print the reference on success, as Docker does."""
    failed = False
    for reference in references:
        try:
            action(_lookup(engine, reference))
        except DonkeyError as error:
            sys.stderr.write(f"donkey: {error}\n")
            failed = True
            continue
        click.echo(reference)
    return REQUEST_FAILED if failed else 0


# ---- durations and statuses, as Docker prints them -------------------------------------

def human_duration(seconds: float) -> str:
    """Format a duration the way Docker's ps does: "5 seconds", "About a minute", "3 hours"."""
    if seconds < 1:
        return "Less than a second"
    if int(seconds) == 1:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def status_text(state, now: float) -> str:
    from donkey.runtime.state import CREATED, EXITED, PAUSED

    status = state.observed_status()
    if status == CREATED:
        return "Created"
    if status == EXITED:
        finished = state.finished_at or now
        text = f"Exited ({state.observed_exit_code()}) {human_duration(now - finished)} ago"
        return text + " (OOM killed)" if state.oom_killed else text
    text = f"Up {human_duration(now - (state.started_at or now))}"
    return text + " (Paused)" if status == PAUSED else text


def _command_text(state, limit: int | None = 20) -> str:
    command = " ".join(state.config.command)
    if limit is not None and len(command) > limit:
        command = command[:limit - 1] + "…"
    return f'"{command}"'


def _image_text(state) -> str:
    return state.config.image or state.config.rootfs


def _rfc3339(timestamp: float) -> str:
    if not timestamp:
        return "0001-01-01T00:00:00Z"
    seconds = int(timestamp)
    fraction = int((timestamp - seconds) * 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def _table(rows: list[list[str]]) -> str:
    """Align columns as Docker's tabwriter does: three spaces after the widest cell."""
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(width + 3) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("".join(cells) + row[-1])
    return "\n".join(lines)


# ---- ps --------------------------------------------------------------------------------

@click.command(context_settings=_SETTINGS)
@click.option("-a", "--all", "show_all", is_flag=True, help="Show stopped containers too.")
@click.option("-q", "--quiet", is_flag=True, help="Print container ids only.")
@click.option("--no-trunc", is_flag=True, help="Print full ids and commands.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]),
              default="table", show_default=True,
              help="table, or json: one JSON object per container and line.")
@click.pass_obj
def ps(engine, show_all, quiet, no_trunc, output_format):
    """List running containers (with -a, all containers)."""
    from donkey.runtime.state import PAUSED, RUNNING

    now = time.time()
    states = sorted(engine.states.list(), key=lambda item: item.created, reverse=True)
    if not show_all:
        states = [state for state in states if state.observed_status() in (RUNNING, PAUSED)]

    def short(state):
        return state.id if no_trunc else state.id[:12]

    if quiet:
        for state in states:
            click.echo(short(state))
        return 0

    if output_format == "json":
        for state in states:
            click.echo(json.dumps({
                "ID": short(state),
                "Image": _image_text(state),
                "Command": _command_text(state, None if no_trunc else 20),
                "CreatedAt": _rfc3339(state.created),
                "RunningFor": human_duration(now - state.created) + " ago",
                "State": state.observed_status(),
                "Status": status_text(state, now),
                "Names": state.name,
                "ExitCode": state.observed_exit_code(),
                "OOMKilled": state.oom_killed,
                "Running": state.observed_status() == RUNNING,
            }))
        return 0

    rows = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"]]
    for state in states:
        rows.append([short(state), _image_text(state),
                     _command_text(state, None if no_trunc else 20),
                     human_duration(now - state.created) + " ago",
                     status_text(state, now), state.name])
    click.echo(_table(rows))
    return 0


# ---- logs ------------------------------------------------------------------------------

def _parse_tail(value: str) -> int | None:
    if value == "all":
        return None
    try:
        count = int(value)
    except ValueError:
        count = -1
    if count < 0:
        raise click.BadParameter(f"invalid --tail {value!r}: give a number of lines or all")
    return count


@click.command(context_settings=_SETTINGS)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until the "
              "container exits.")
@click.option("-n", "--tail", default="all", show_default=True,
              help="Number of lines from the end of the log to print, or all.")
@click.option("-t", "--timestamps", is_flag=True, help="Prefix each line with its time.")
@click.argument("container")
@click.pass_obj
def logs(engine, follow, tail, timestamps, container):
    """Print a container's output: its stdout on stdout, its stderr on stderr."""
    from donkey.logs.container import follow_records, read_records

    tail_count = _parse_tail(tail)
    state = _lookup(engine, container)
    path = state.log_path or engine.log_path(state.id)
    records, offset = read_records(path, tail_count)
    for record in records:
        _print_record(record, timestamps)

    if follow:
        def is_running() -> bool:
            try:
                current = engine.states.load(state.id)
            except NotFound:
                return False
            return current.observed_status() != "exited" or current.monitor_is_alive()

        for record in follow_records(path, offset, is_running):
            _print_record(record, timestamps)
    return 0


def _print_record(record: dict, timestamps: bool) -> None:
    target = sys.stderr if record.get("stream") == "stderr" else sys.stdout
    text = record["log"]
    if timestamps:
        text = f"{record.get('time', '')} {text}"
    target.buffer.write(text.encode("utf-8", errors="replace"))
    target.flush()


# ---- stop, kill, wait, restart, pause, unpause -----------------------------------------

# Shared by stop and restart, which both stop a container the same way.
_stop_timeout_option = click.option(
    "-t", "--time", "timeout", type=click.IntRange(min=0), default=10, show_default=True,
    help="Seconds to wait after SIGTERM before SIGKILL.")

@click.command(context_settings=_SETTINGS)
@_stop_timeout_option
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def stop(engine, timeout, containers):
    """Stop containers: SIGTERM, then SIGKILL after --time seconds."""
    from donkey.runtime.engine import stop as stop_container

    def action(state):
        _mark_stopped_by_user(engine, state)
        stop_container(engine, state, timeout)

    return _for_each(engine, containers, action)


def _mark_stopped_by_user(engine, state) -> None:
    # A --restart policy does not bring back a container that someone stopped.
    from donkey.runtime.monitor import STOPPED_BY_USER

    if state.restart_policy != "no" and state.observed_status() != "exited":
        state.error = STOPPED_BY_USER
        engine.states.save(state)


def parse_signal(value: str) -> int:
    """Parse a signal number or name, with or without SIG: 9, KILL, SIGKILL, sigterm."""
    text = value.strip().upper()
    if text.isdigit():
        number = int(text)
        if 0 < number < signal.NSIG:
            return number
    else:
        name = text if text.startswith("SIG") else "SIG" + text
        member = getattr(signal.Signals, name, None) if name.isidentifier() else None
        if isinstance(member, signal.Signals):
            return int(member)
    raise click.BadParameter(f"invalid signal {value!r}: give a name such as TERM or "
                             f"SIGKILL, or a number from 1 to {signal.NSIG - 1}")


@click.command(context_settings=_SETTINGS)
@click.option("-s", "--signal", "signal_name", default="KILL", show_default=True,
              help="Signal to send, by name or number.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def kill(engine, signal_name, containers):
    """Send a signal to the main process of containers."""
    from donkey.runtime.engine import send_signal

    signum = parse_signal(signal_name)

    def action(state):
        _require_running(state, "kill")
        if signum in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            _mark_stopped_by_user(engine, state)
        if not send_signal(state, signum):
            _require_running(engine.states.load(state.id), "kill")

    return _for_each(engine, containers, action)


@click.command(context_settings=_SETTINGS)
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def wait(engine, containers):
    """Wait until containers exit, then print their exit codes."""
    from donkey.runtime.engine import wait_for_exit

    failed = False
    for reference in containers:
        try:
            state = wait_for_exit(engine, _lookup(engine, reference))
        except DonkeyError as error:
            # NOTE: a --rm container is removed with its state as it exits, so wait
            # cannot print its exit code and reports it as gone.
            sys.stderr.write(f"donkey: {error}\n")
            failed = True
            continue
        click.echo(str(state.observed_exit_code()))
    return REQUEST_FAILED if failed else 0


@click.command(context_settings=_SETTINGS)
@_stop_timeout_option
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def restart(engine, timeout, containers):
    """Stop containers (as donkey stop does) and start them again in the background."""
    from donkey.runtime.monitor import restart_detached

    def action(state):
        restart_detached(engine, state, timeout)

    return _for_each(engine, containers, action)


def _cgroup_of(engine, state, action: str):
    manager = engine.cgroup_manager()
    if manager is None:
        raise DonkeyError(f"cannot {action} container {state.name}: this donkey build has "
                          "no cgroup support")
    return manager.load(state.id)


@click.command(context_settings=_SETTINGS)
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def pause(engine, containers):
    """Freeze every process of containers with the cgroup freezer."""
    from donkey.runtime.state import PAUSED

    def action(state):
        _require_running(state, "pause")
        cgroup = _cgroup_of(engine, state, "pause")
        if not getattr(cgroup, "can_freeze", lambda: True)():
            raise DonkeyError(f"cannot pause container {state.name}: this kernel has no "
                              "cgroup freezer (v1 freezer, or cgroup.freeze since Linux 5.2)")
        cgroup.freeze()
        state.status = PAUSED
        engine.states.save(state)

    return _for_each(engine, containers, action)


@click.command(context_settings=_SETTINGS)
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def unpause(engine, containers):
    """Thaw containers frozen by donkey pause."""
    from donkey.runtime.state import PAUSED, RUNNING

    def action(state):
        if state.observed_status() != PAUSED:
            raise DonkeyError(f"cannot unpause container {state.name}: it is not paused",
                              exit_code=REQUEST_FAILED)
        _cgroup_of(engine, state, "unpause").thaw()
        state.status = RUNNING
        engine.states.save(state)

    return _for_each(engine, containers, action)


# ---- inspect ---------------------------------------------------------------------------

def inspect_data(engine, state) -> dict:
    """Build Docker's inspect object for one container (the fields donkey has)."""
    from donkey.runtime.state import EXITED, PAUSED, RUNNING

    config = state.config
    status = state.observed_status()
    running = status in (RUNNING, PAUSED)
    return {
        "Id": state.id,
        "Created": _rfc3339(state.created),
        "Path": config.command[0] if config.command else "",
        "Args": config.command[1:],
        "State": {
            "Status": status,
            "Running": running,
            "Paused": status == PAUSED,
            "Restarting": False,
            "OOMKilled": state.oom_killed,
            "Dead": False,
            "Pid": state.pid if running else 0,
            "ExitCode": state.observed_exit_code() if status == EXITED else 0,
            "Error": state.error,
            "StartedAt": _rfc3339(state.started_at),
            "FinishedAt": _rfc3339(state.finished_at),
        },
        "Image": config.image or "",
        "Name": "/" + state.name,
        "RestartCount": state.restart_count,
        "LogPath": state.log_path,
        "Driver": config.storage_driver,
        "HostConfig": {
            "AutoRemove": config.auto_remove,
            "Init": state.init,
            "RestartPolicy": {"Name": state.restart_policy},
            "Resources": config.resources,
        },
        "GraphDriver": {"Name": config.storage_driver,
                        "Data": {"LowerDir": config.rootfs, "Dir": state.data_dir}},
        "Mounts": [{"Type": "bind", "Source": mount.source,
                    "Destination": mount.destination, "RW": not mount.readonly}
                   for mount in config.mounts],
        "Config": {
            "Hostname": config.hostname,
            "Env": config.env,
            "Cmd": config.command,
            "Image": config.image or "",
            "WorkingDir": config.workdir,
            "Tty": config.tty,
            "OpenStdin": config.interactive,
        },
        "Cgroups": state.cgroup_paths,
        "Monitor": {"Pid": state.monitor_pid if state.monitor_is_alive() else 0},
    }


_TEMPLATE_FIELD = re.compile(r"\{\{\s*((?:\.[A-Za-z0-9_]+)+|\.)\s*\}\}")


def render_template(template: str, data: dict) -> str:
    """Fill {{.State.Status}}-style fields, the subset of Go templates donkey supports."""
    def field(match: re.Match) -> str:
        value = data
        for part in match.group(1).split(".")[1:]:
            if not isinstance(value, dict) or part not in value:
                raise click.BadParameter(f"invalid --format field {match.group(0)}: "
                                         f"{part} does not exist; see donkey inspect output")
            value = value[part]
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return _TEMPLATE_FIELD.sub(field, template)


@click.command(context_settings=_SETTINGS)
@click.option("-f", "--format", "template", help="Print fields such as "
              "'{{.State.Status}}' instead of the JSON array.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def inspect(engine, template, containers):
    """Print the configuration and state of containers as a JSON array."""
    results = []
    failed = False
    for reference in containers:
        try:
            results.append(inspect_data(engine, _lookup(engine, reference)))
        except DonkeyError as error:
            sys.stderr.write(f"donkey: {error}\n")
            failed = True
    if template is not None:
        for item in results:
            click.echo(render_template(template, item))
    else:
        click.echo(json.dumps(results, indent=4))
    return REQUEST_FAILED if failed else 0


# ---- top and stats ---------------------------------------------------------------------

def _container_pids(state) -> list[int]:
    """Return the processes in the PID namespace of the container's init, init first."""
    try:
        namespace = os.readlink(f"/proc/{state.pid}/ns/pid")
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") == namespace:
                found.append(int(entry))
        except OSError:
            continue
    return sorted(found, key=lambda pid: (pid != state.pid, pid))


def _process_row(pid: int, users: dict[int, str], ticks: int, boot_time: float) -> list[str]:
    with open(f"/proc/{pid}/stat", "rb") as stream:
        stat = stream.read()
    fields = stat[stat.rindex(b")") + 2:].split()
    with open(f"/proc/{pid}/cmdline", "rb") as stream:
        argv = stream.read().rstrip(b"\0").split(b"\0")
    command = " ".join(arg.decode(errors="replace") for arg in argv) or \
        "[" + stat[stat.index(b"(") + 1:stat.rindex(b")")].decode(errors="replace") + "]"
    uid = os.stat(f"/proc/{pid}").st_uid
    cpu_seconds = (int(fields[11]) + int(fields[12])) // ticks
    started = boot_time + int(fields[19]) / ticks
    return [users.get(uid, str(uid)), str(pid), fields[1].decode(),
            time.strftime("%H:%M", time.localtime(started)),
            time.strftime("%H:%M:%S", time.gmtime(cpu_seconds)), command]


def _boot_time() -> float:
    with open("/proc/stat", encoding="ascii") as stream:
        for line in stream:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def _host_users() -> dict[int, str]:
    users = {}
    try:
        with open("/etc/passwd", encoding="utf-8", errors="replace") as stream:
            for line in stream:
                fields = line.split(":")
                if len(fields) > 2 and fields[2].isdigit():
                    users.setdefault(int(fields[2]), fields[0])
    except OSError:
        pass
    return users


@click.command(context_settings=_SETTINGS)
@click.argument("container")
@click.pass_obj
def top(engine, container):
    """List the processes of a running container (host pids)."""
    state = _lookup(engine, container)
    _require_running(state, "list the processes of")
    ticks = os.sysconf("SC_CLK_TCK")
    boot_time = _boot_time()
    users = _host_users()
    rows = [["UID", "PID", "PPID", "STIME", "TIME", "CMD"]]
    for pid in _container_pids(state):
        try:
            rows.append(_process_row(pid, users, ticks, boot_time))
        except (OSError, ValueError, IndexError):
            continue  # the process exited while it was being read
    click.echo(_table(rows))
    return 0


def _format_bytes(count: float | None) -> str:
    if count is None:
        return "--"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.4g}{unit}"
        count /= 1024
    return f"{count}B"


def _sample(engine, states) -> dict:
    manager = engine.cgroup_manager()
    samples = {}
    for state in states:
        try:
            samples[state.id] = (time.monotonic(), manager.load(state.id).stats())
        except (DonkeyError, OSError, ValueError) as error:
            samples[state.id] = (time.monotonic(), {"error": str(error)})
    return samples


def _stats_rows(states, before: dict, after: dict) -> list[list[str]]:
    total_memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    rows = [["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"]]
    for state in states:
        start_time, first = before[state.id]
        end_time, second = after[state.id]
        cpu = "--"
        if "cpu_usage_usec" in first and "cpu_usage_usec" in second and end_time > start_time:
            used = second["cpu_usage_usec"] - first["cpu_usage_usec"]
            cpu = f"{100.0 * used / ((end_time - start_time) * 1e6):.2f}%"
        usage = second.get("memory_usage")
        limit = second.get("memory_limit")
        # v1 reports "no limit" as a huge number near 2^63.
        if limit is None or limit >= total_memory:
            limit = total_memory
        memory_percent = f"{100.0 * usage / limit:.2f}%" if usage is not None else "--"
        rows.append([state.id[:12], state.name, cpu,
                     f"{_format_bytes(usage)} / {_format_bytes(limit)}", memory_percent,
                     str(second.get("pids", "--"))])
    return rows


@click.command(context_settings=_SETTINGS)
@click.option("--no-stream", is_flag=True, help="Print one sample and exit.")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show stopped containers too.")
@click.argument("containers", nargs=-1)
@click.pass_obj
def stats(engine, no_stream, show_all, containers):
    """Print CPU, memory and process counts from the cgroups of containers."""
    from donkey.runtime.state import RUNNING

    if engine.cgroup_manager() is None:
        raise DonkeyError("stats needs cgroup support, which this donkey build lacks")
    if containers:
        states = [_lookup(engine, reference) for reference in containers]
    else:
        states = [state for state in engine.states.list()
                  if show_all or state.observed_status() == RUNNING]

    before = _sample(engine, states)
    while True:
        time.sleep(0.5)
        after = _sample(engine, states)
        if not no_stream:
            click.echo("\033[2J\033[H", nl=False)
        click.echo(_table(_stats_rows(states, before, after)))
        if no_stream:
            return 0
        before = after


# ---- exec ------------------------------------------------------------------------------

@click.command("exec", context_settings={**_SETTINGS, "allow_interspersed_args": False})
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin attached.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-terminal.")
@click.option("-d", "--detach", is_flag=True, help="Run the command in the background.")
@click.option("-e", "--env", "env_items", multiple=True, metavar="KEY=VALUE",
              help="Set an environment variable; a bare KEY copies the caller's value.")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("-u", "--user", help="User as name, uid, name:group or uid:gid.")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_command(engine, interactive, tty, detach, env_items, workdir, user, container,
                 command):
    """Run COMMAND in a running container's namespaces and cgroup; exit with its status."""
    from donkey.config import container as cfg
    from donkey.errors import InvalidArgument
    from donkey.runtime.exec import ExecRequest, exec_in_container

    state = _lookup(engine, container)
    _require_running(state, "exec in")
    if tty and interactive and not os.isatty(0):
        raise InvalidArgument("the input device is not a TTY: drop -t, or run donkey from "
                              "a terminal", exit_code=REQUEST_FAILED)
    if workdir is not None:
        workdir = cfg.validate_workdir(workdir)

    host_env = dict(os.environ)
    user_env = []
    for item in env_items:
        pair = cfg.parse_env_assignment(item, host_env)
        if pair is not None:
            user_env.append(pair)
    request = ExecRequest(command=list(command), env=user_env, workdir=workdir, user=user,
                          tty=tty, interactive=interactive, detach=detach)
    return exec_in_container(engine, state, request)
