"""The `donkey` command: global flags, lazily loaded subcommands, and exit-code mapping.

Subcommand modules are imported only when their command runs, so `donkey run` does not
pay for the imports of `info` or `images`.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from donkey.errors import ENGINE_FAILURE, DonkeyError

# name -> "module:attribute"; add a command here and in its own module.
COMMANDS = {
    "run": "donkey.cli.run:run",
    "rm": "donkey.cli.containers:rm",
    "images": "donkey.cli.images:images",
    "rmi": "donkey.cli.images:rmi",
    "info": "donkey.cli.info:info",
}

# Single-dash long flags the original Go tool accepted, rewritten before click parses.
LEGACY_FLAGS = {"-cpushare": "--cpu-shares"}


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
    ctx.obj = Engine(root=root, data_root=data_root, cgroup_parent=cgroup_parent,
                     storage_driver=storage_driver)


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
            "donkey needs root to create namespaces, mounts and cgroups: run it as root "
            "(sudo donkey ...)"
        )


def main(argv: list[str] | None = None) -> None:
    args = rewrite_legacy_flags(sys.argv[1:] if argv is None else argv)
    try:
        code = cli.main(args, prog_name="donkey", standalone_mode=False)
    except DonkeyError as error:
        _report(str(error))
        sys.exit(error.exit_code)
    except click.exceptions.NoArgsIsHelpError as error:
        click.echo(error.ctx.get_help() if error.ctx else str(error))
        sys.exit(0)
    except click.UsageError as error:
        hint = f"; see donkey {error.ctx.command_path.partition(' ')[2]} --help".rstrip() \
            if error.ctx else ""
        _report(f"{error.format_message()}{hint}")
        sys.exit(ENGINE_FAILURE)
    except click.Abort:
        sys.exit(130)
    except click.exceptions.Exit as exit_request:
        sys.exit(exit_request.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def _report(message: str) -> None:
    import logging

    logger = logging.getLogger("donkey")
    # Also record it in a --log file, where runc's callers look for the error.
    if any(not _is_stderr(handler) for handler in logger.handlers):
        logger.error("%s", message)
    sys.stderr.write(f"donkey: {message}\n")


def _is_stderr(handler) -> bool:
    return getattr(handler, "stream", None) is sys.stderr
