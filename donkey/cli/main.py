"""The `donkey` command: global flags, lazily loaded subcommands, and exit-code mapping.

Subcommand modules are imported only when their command runs, so `donkey run` does not
pay for the imports of `info` or `images`. A common `donkey run` goes further and skips
click altogether (see parse_globals_fast and parse_run_fast), because importing click
costs 15 to 19 ms, more than half of a container start in runc.
"""

from __future__ import annotations

import errno
import os
import sys

from donkey.errors import ENGINE_FAILURE, DonkeyError

# name -> "module:attribute"; add a command here and in its own module.
COMMANDS = {
    "run": "donkey.cli.run:run",
    "rm": "donkey.cli.containers:rm",
    "images": "donkey.cli.images:images",
    "rmi": "donkey.cli.images:rmi",
    "info": "donkey.cli.info:info",
    "ps": "donkey.cli.lifecycle:ps",
    "logs": "donkey.cli.lifecycle:logs",
    "exec": "donkey.cli.lifecycle:exec_command",
    "stop": "donkey.cli.lifecycle:stop",
    "kill": "donkey.cli.lifecycle:kill",
    "wait": "donkey.cli.lifecycle:wait",
    "restart": "donkey.cli.lifecycle:restart",
    "inspect": "donkey.cli.lifecycle:inspect",
    "top": "donkey.cli.lifecycle:top",
    "stats": "donkey.cli.lifecycle:stats",
    "pause": "donkey.cli.lifecycle:pause",
    "unpause": "donkey.cli.lifecycle:unpause",
}

# Commands that read nothing under --root or --data-root, so any user may run them.
COMMANDS_WITHOUT_ROOT = {"info"}

# Single-dash long flags the original Go tool accepted, rewritten before click parses.
LEGACY_FLAGS = {"-cpushare": "--cpu-shares"}

# The `donkey run` options that parse_run_fast handles without click:
# option -> (run_container parameter, kind). A "flag" is True when given, a "value" is a
# string, an "int" goes through int() as click.INT does, and a "multiple" collects a tuple.
# tests/unit/test_cli_fast_path.py checks every entry against the click command.
FAST_RUN_OPTIONS = {
    "-i": ("interactive", "flag"), "--interactive": ("interactive", "flag"),
    "-t": ("tty", "flag"), "--tty": ("tty", "flag"),
    "-d": ("detach", "flag"), "--detach": ("detach", "flag"),
    "--rm": ("auto_remove", "flag"),
    "--name": ("name", "value"),
    "--init": ("init", "flag"),
    "--restart": ("restart", "value"),
    "-h": ("hostname", "value"), "--hostname": ("hostname", "value"),
    "-e": ("env_items", "multiple"), "--env": ("env_items", "multiple"),
    "--env-file": ("env_files", "multiple"),
    "-v": ("volumes", "multiple"), "--volume": ("volumes", "multiple"),
    "-w": ("workdir", "value"), "--workdir": ("workdir", "value"),
    "-m": ("memory", "value"), "--memory": ("memory", "value"),
    "--memory-swap": ("memory_swap", "value"),
    "--memory-reservation": ("memory_reservation", "value"),
    "-c": ("cpu_shares", "int"), "--cpu-shares": ("cpu_shares", "int"),
    "--cpus": ("cpus", "value"),
    "--cpu-quota": ("cpu_quota", "int"),
    "--cpu-period": ("cpu_period", "int"),
    "--cpuset-cpus": ("cpuset_cpus", "value"),
    "--cpuset-mems": ("cpuset_mems", "value"),
    "--pids-limit": ("pids_limit", "int"),
    "--blkio-weight": ("blkio_weight", "int"),
}
# The global options that parse_globals_fast handles before `run`:
# option -> (group parameter, environment variable, default, accepted values or None).
# tests/unit/test_cli_fast_path.py checks every entry against the click group.
FAST_GLOBAL_OPTIONS = {
    "--root": ("root", "DONKEY_ROOT", "/run/donkey", None),
    "--data-root": ("data_root", "DONKEY_DATA_ROOT", "/var/lib/donkey", None),
    "--cgroup-parent": ("cgroup_parent", "DONKEY_CGROUP_PARENT", "donkey", None),
    "--storage-driver": ("storage_driver", "DONKEY_STORAGE_DRIVER", None, ("overlay", "vfs")),
    "--log": ("log_path", None, None, None),
    "--log-format": ("log_format", None, "text", ("text", "json")),
    "--log-level": ("log_level", None, "warning", ("debug", "info", "warning", "error")),
    "--debug": ("debug", None, False, None),
}

# Defaults other than None, False and () for the parameters above, plus the parameters
# that only click parses (--rootfs); the tests compare both sets with the click command.
FAST_RUN_DEFAULTS = {"restart": "no", "rootfs": None}


def _build_cli():
    """Build the click group; the first access to `cli` calls this."""
    import importlib

    import click

    class LazyGroup(click.Group):
        def list_commands(self, ctx: click.Context) -> list[str]:
            return sorted(COMMANDS)

        def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
            target = COMMANDS.get(name)
            if target is None:
                return None
            module_name, attribute = target.split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as error:
                if error.name != module_name:
                    raise
                return None
            return getattr(module, attribute)

    @click.group(cls=LazyGroup, context_settings={"help_option_names": ["--help"]})
    @click.version_option(package_name="donkey", prog_name="donkey")
    @click.option("--root", envvar="DONKEY_ROOT", default="/run/donkey", show_default=True,
                  help="Directory for container state.")
    @click.option("--data-root", envvar="DONKEY_DATA_ROOT", default="/var/lib/donkey",
                  show_default=True, help="Directory for images and container layers.")
    @click.option("--cgroup-parent", envvar="DONKEY_CGROUP_PARENT", default="donkey",
                  show_default=True, help="Parent cgroup, under each hierarchy's root.")
    @click.option("--storage-driver", envvar="DONKEY_STORAGE_DRIVER",
                  type=click.Choice(["overlay", "vfs"]),
                  help="overlay (a writable layer) or vfs (a copied rootfs); default: overlay "
                       "where the kernel has it.")
    @click.option("--log", "log_path", metavar="FILE", help="Append engine logs to FILE.")
    @click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
                  show_default=True, help="Engine log format.")
    @click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
                  default="warning", show_default=True, help="Lowest level of engine logs.")
    @click.option("--debug", is_flag=True, help="Same as --log-level debug.")
    @click.pass_context
    def cli(ctx, root, data_root, cgroup_parent, storage_driver, log_path, log_format, log_level,
            debug):
        """A Linux container engine: run a command in its own namespaces and cgroups."""
        from donkey.logs.engine import configure
        from donkey.runtime.engine import Engine

        configure("debug" if debug else log_level, log_format, log_path)
        # The one root check of the click path: every command but info reads the state or
        # data root. A --help anywhere skips it, so help prints for any user.
        if ctx.invoked_subcommand not in COMMANDS_WITHOUT_ROOT and "--help" not in sys.argv:
            require_root()
        ctx.obj = Engine(root=root, data_root=data_root, cgroup_parent=cgroup_parent,
                         storage_driver=storage_driver)

    return cli


def __getattr__(name: str):
    # Module attribute hook (PEP 562): `from donkey.cli.main import cli` still works, but
    # only the click path pays for building the group.
    if name == "cli":
        command = _build_cli()
        globals()["cli"] = command
        return command
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def rewrite_legacy_flags(argv: list[str]) -> list[str]:
    """Rewrite -cpushare 512 and -cpushare=512 to --cpu-shares, up to a bare '--'."""
    rewritten = []
    for index, arg in enumerate(argv):
        if arg == "--":
            return rewritten + argv[index:]
        name, sep, value = arg.partition("=")
        if name in LEGACY_FLAGS:
            arg = LEGACY_FLAGS[name] + (sep + value if sep else "")
        rewritten.append(arg)
    return rewritten


def require_root() -> None:
    if os.geteuid() != 0:
        raise DonkeyError(
            "this command needs root, because donkey creates namespaces, mounts and cgroups: "
            "run it as root (sudo donkey ...)"
        )


def main(argv: list[str] | None = None) -> None:
    args = rewrite_legacy_flags(sys.argv[1:] if argv is None else argv)
    parsed = parse_globals_fast(args)
    if parsed is not None:
        options, rest = parsed
        params = parse_run_fast(rest)
        if params is not None:
            _main_fast(params, options)
    _main_click(args)


def _main_click(args: list[str]) -> None:
    import click

    try:
        group = globals().get("cli") or __getattr__("cli")
        code = group.main(args, prog_name="donkey", standalone_mode=False)
    except DonkeyError as error:
        _report(str(error))
        sys.exit(error.exit_code)
    except click.exceptions.NoArgsIsHelpError as error:
        click.echo(error.ctx.get_help() if error.ctx else str(error))
        sys.exit(0)
    except click.UsageError as error:
        command = error.ctx.command_path.partition(" ")[2] if error.ctx else ""
        hint = f"; see donkey {command} --help" if command else "; see donkey --help"
        _report(f"{error.format_message().rstrip('.')}{hint}")
        sys.exit(ENGINE_FAILURE)
    except click.Abort:
        sys.exit(130)
    except click.exceptions.Exit as exit_request:
        sys.exit(exit_request.exit_code)
    except OSError as error:
        # A --log, --root or --data-root path that cannot be used, for instance.
        _report(_describe_os_error(error))
        sys.exit(ENGINE_FAILURE)
    sys.exit(code if isinstance(code, int) else 0)


def _describe_os_error(error: OSError) -> str:
    where = f": {error.filename}" if error.filename else ""
    if error.errno == errno.ENOSPC:
        advice = ("free space on the filesystem of --root (state) or --data-root (images "
                  "and layers)")
    else:
        advice = ("check the path and its permissions (state lives in --root, images and "
                  "layers in --data-root)")
    return f"{error.strerror or error}{where}: {advice}"


def parse_globals_fast(args: list[str]) -> tuple[dict, list[str]] | None:
    """Parse the global options before the command as the click group would.

    Returns the group's parameters and the arguments from the command on, or None when
    click must do the work: an option missing from FAST_GLOBAL_OPTIONS (--help,
    --version), a missing value, a value outside the accepted ones, or a bad environment
    variable.
    """
    options: dict = {}
    for parameter, variable, default, accepted in FAST_GLOBAL_OPTIONS.values():
        value = os.environ.get(variable) if variable else None
        if value and accepted is not None and value not in accepted:
            return None
        options[parameter] = value or default

    index = 0
    while index < len(args) and args[index].startswith("-"):
        name, separator, value = args[index].partition("=")
        option = FAST_GLOBAL_OPTIONS.get(name)
        if option is None:
            return None
        parameter, _, _, accepted = option
        if parameter == "debug":
            if separator:
                return None
            options[parameter] = True
            index += 1
            continue
        if not separator:
            if index + 1 >= len(args) or args[index + 1].startswith("-"):
                return None
            value = args[index + 1]
            index += 1
        if accepted is not None and value not in accepted:
            return None
        options[parameter] = value
        index += 1
    return options, args[index:]


def parse_run_fast(args: list[str]) -> dict | None:
    """Parse `run [OPTIONS] [IMAGE] [COMMAND]...` as click would, for common options only.

    Returns run_container()'s keyword arguments, or None whenever click must do the work:
    a global option before `run`, an option missing from FAST_RUN_OPTIONS (--help,
    --rootfs), a value click would reject, or an environment variable click would check.
    """
    if not args or args[0] != "run":
        return None
    if os.environ.get("DONKEY_STORAGE_DRIVER") not in (None, "", "overlay", "vfs"):
        return None

    params: dict = {}
    for parameter, kind in FAST_RUN_OPTIONS.values():
        if kind == "multiple":
            params[parameter] = ()
        elif kind == "flag":
            params[parameter] = False
        else:
            params[parameter] = None
    params.update(FAST_RUN_DEFAULTS)

    tokens = args[1:]
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "--":
            index += 1
            break
        if token == "-" or not token.startswith("-"):
            break

        name, separator, attached = token.partition("=") if token.startswith("--") \
            else (token, "", "")
        option = FAST_RUN_OPTIONS.get(name)
        if option is None:
            flags = _joined_short_flags(token)
            if flags is None:
                return None
            for flag in flags:
                params[FAST_RUN_OPTIONS[flag][0]] = True
            index += 1
            continue

        parameter, kind = option
        if kind == "flag":
            if separator:
                return None
            params[parameter] = True
            index += 1
            continue

        if separator:
            value = attached
            index += 1
        elif index + 1 < len(tokens):
            value = tokens[index + 1]
            index += 2
        else:
            return None
        if kind == "int":
            try:
                value = int(value)
            except ValueError:
                return None
        if kind == "multiple":
            params[parameter] += (value,)
        else:
            params[parameter] = value

    params["arguments"] = tuple(tokens[index:])
    return params


def _joined_short_flags(token: str) -> list[str] | None:
    """Split '-ti' into ['-t', '-i'] when every letter is a flag; else return None."""
    if len(token) < 3 or token.startswith("--"):
        return None
    flags = [f"-{letter}" for letter in token[1:]]
    if all(FAST_RUN_OPTIONS.get(flag, ("", ""))[1] == "flag" for flag in flags):
        return flags
    return None


def _main_fast(params: dict, options: dict) -> None:
    try:
        code = _run_fast(params, options)
    except DonkeyError as error:
        _report(str(error))
        code = error.exit_code
    except KeyboardInterrupt:
        # click turns an interrupt into a newline on stderr and Abort, which exits 130.
        sys.stderr.write("\n")
        code = 130
    except OSError as error:
        # click exits 1 when stdout is a closed pipe.
        if error.errno == errno.EPIPE:
            code = 1
        else:
            _report(_describe_os_error(error))
            code = ENGINE_FAILURE
    _exit_now(code if isinstance(code, int) else 0)


def _exit_now(code: int) -> None:
    """Flush logs and stdio, then exit without the interpreter's teardown.

    Tearing down every module costs 5 to 10 ms of CPU on each `donkey run`. Nothing that
    donkey registers with atexit needs the teardown, and engine_logs.shutdown flushes the logs.
    """
    from donkey.logs import engine as engine_logs

    engine_logs.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _run_fast(params: dict, options: dict) -> int:
    import gc

    # Before the imports: a caller that is not root gets the same one-line error, and no
    # import error from an interpreter it may not be able to read.
    require_root()

    # The imports below allocate about 16,000 long-lived objects; collecting
    # while they load only re-scans them. Freezing moves them out of later collections.
    gc.disable()
    try:
        # The container's init runs this module right after the fork. Imported here, the
        # child finds it loaded instead of importing it on the critical path of the start.
        import donkey.runtime.init  # noqa: F401
        from donkey.cli.run import run_container
        from donkey.logs.engine import configure
        from donkey.runtime.engine import Engine
        from donkey.runtime.spawn import run_foreground  # noqa: F401 - loaded for the start

        try:
            import donkey.cgroups  # noqa: F401 - every container gets a cgroup
        except ImportError:
            # Engine.cgroup_manager reports a build without cgroup support.
            pass
    finally:
        gc.freeze()
        gc.enable()

    # As the click group does with the same global options.
    configure("debug" if options["debug"] else options["log_level"], options["log_format"],
              options["log_path"])
    engine = Engine(root=options["root"], data_root=options["data_root"],
                    cgroup_parent=options["cgroup_parent"],
                    storage_driver=options["storage_driver"])
    return run_container(engine, **params)


def _report(message: str) -> None:
    from donkey.logs import engine as engine_logs

    # Also record it in a --log file, where runc's callers look for the error.
    if engine_logs.writes_to_file():
        engine_logs.get_logger("cli").error("%s", message)
    sys.stderr.write(f"donkey: {message}\n")
