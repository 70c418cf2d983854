"""donkey run: create a container from an image (or a directory) and run a command in it.

The click command is built on first access to `run`, so the fast path in
donkey.cli.main can call run_container() without importing click.
"""

from __future__ import annotations

import os

from donkey.cli.main import require_root
from donkey.config import container as cfg
from donkey.errors import COMMAND_NOT_FOUND, DonkeyError, InvalidArgument


def _resolve_image_and_command(engine, arguments: tuple[str, ...], rootfs: str | None):
    """Split the positional arguments into (image, command) as Docker users expect.

    The first argument is the image when it names one: a stored or built-in image, or a
    reference with a tag or registry path. Otherwise the image is busybox and every
    argument is the command, so `donkey run -ti sh` works like the original tool.
    """
    from donkey.image.store import DEFAULT_IMAGE

    if rootfs is not None:
        return None, list(arguments)
    if not arguments:
        return engine.images.get(DEFAULT_IMAGE), []

    first = arguments[0]
    looks_like_reference = (":" in first or "/" in first) and not first.startswith(("/", "."))
    if looks_like_reference or engine.images.has(first):
        return engine.images.get(first), list(arguments[1:])
    return engine.images.get(DEFAULT_IMAGE), list(arguments)


def _resources(options: dict):
    """Build a cgroups.Resources from the limit flags, or None when none was given."""
    given = {key: value for key, value in options.items() if value is not None}
    if not given:
        return None
    try:
        from donkey.cgroups import Resources
        from donkey.cli import units
    except ImportError:
        raise InvalidArgument("this donkey build has no cgroup support, so resource limits "
                              f"({', '.join(sorted(given))}) cannot be applied") from None

    resources = Resources()
    for key, value in given.items():
        if key in ("memory", "memory_reservation"):
            value = units.parse_bytes(value, flag="--" + key.replace("_", "-"))
        elif key == "memory_swap":
            value = units.parse_bytes(value, flag="--memory-swap", allow_unlimited=True)
        elif key == "cpus":
            value = units.parse_cpus(value)
        setattr(resources, key, value)

    if resources.memory and resources.memory_swap is None:
        from donkey.hal.probe import host

        info = host()
        if info.swap_accounting and info.swap_total:
            # Docker's default: the container may use as much swap as memory.
            resources.memory_swap = 2 * resources.memory
    return resources


def run_container(engine, interactive=False, tty=False, detach=False, auto_remove=False,
                  name=None, hostname=None, env_items=(), env_files=(), volumes=(), workdir=None,
                  rootfs=None, arguments=(), init=False, restart="no", **limits) -> int:
    """Create and run a container from the parsed `donkey run` flags; return the exit code.

    The keyword arguments are the click parameters of `run`, by the same names.
    """
    require_root()
    from donkey.runtime.state import ContainerState, new_id, own_start_time

    if name is not None:
        cfg.validate_name(name)
    if hostname is not None:
        cfg.validate_hostname(hostname)
    if rootfs is not None:
        rootfs = _check_rootfs(rootfs)
    from donkey.runtime.monitor import parse_restart_policy

    restart = parse_restart_policy(restart or "no")
    if restart != "no" and auto_remove:
        raise InvalidArgument("conflicting options: --restart and --rm; drop one of them")

    host_env = dict(os.environ)
    user_env = []
    for path in env_files:
        user_env.extend(cfg.parse_env_file(path, host_env))
    for item in env_items:
        pair = cfg.parse_env_assignment(item, host_env)
        if pair is not None:
            user_env.append(pair)
    mounts = [cfg.parse_volume(spec) for spec in volumes]
    if workdir is not None:
        workdir = cfg.validate_workdir(workdir)
    if interactive and tty and not detach and not os.isatty(0):
        raise InvalidArgument("the input device is not a TTY: drop -t, or run donkey from "
                              "a terminal", exit_code=1)

    resources = _resources(limits)
    manager = engine.cgroup_manager() if resources is not None else None
    if manager is not None:
        manager.check(resources)

    image, command = _resolve_image_and_command(engine, arguments, rootfs)
    if not command:
        command = image.cmd if image is not None else []
    if not command or not command[0]:
        raise InvalidArgument("no command given: add the program to run after the image "
                              "name (or after --rootfs DIR)")

    container_id = new_id()
    hostname = hostname or container_id[:12]
    config = cfg.ContainerConfig(
        id=container_id,
        name="",
        image=image.name if image is not None else None,
        rootfs=rootfs if rootfs is not None else image.rootfs,
        command=command,
        env=cfg.build_env(image.env if image is not None else [], user_env, hostname, tty),
        hostname=hostname,
        workdir=workdir or (image.workdir if image is not None else "/"),
        tty=tty,
        interactive=interactive,
        mounts=mounts,
        auto_remove=auto_remove,
        storage_driver=engine.pick_storage_driver(),
        resources={key: value for key, value in vars(resources).items() if value is not None}
        if resources is not None else {},
    )

    engine.collect_garbage()
    state = ContainerState(config=config, init=init, restart_policy=restart,
                           creator_pid=os.getpid(), creator_start_time=own_start_time())
    engine.states.create(state, name)

    try:
        if detach:
            from donkey.runtime.monitor import run_detached

            run_detached(engine, state, resources)
            print(state.id, flush=True)
            return 0

        from donkey.runtime.spawn import run_foreground

        return run_foreground(engine, state, resources)
    except DonkeyError as error:
        if error.exit_code == COMMAND_NOT_FOUND and image is not None and arguments \
                and arguments[0] == command[0] \
                and image.name != arguments[0]:
            # The first word was taken as a command in the default image; it may be a
            # mistyped image name.
            error.message += (f"; if {arguments[0]} is meant as an image, no image of that "
                              "name exists (see donkey images)")
        raise


def _check_rootfs(path: str) -> str:
    real = os.path.realpath(path)
    if not os.path.isdir(real):
        raise InvalidArgument(f"rootfs {path} does not exist or is not a directory: give a "
                              "directory that contains the container's files", path=path)
    if any(char in real for char in ",:"):
        raise InvalidArgument(f"rootfs path {real} contains ',' or ':', which overlay mount "
                              "options cannot carry: move or link it elsewhere", path=path)
    if real == "/":
        raise InvalidArgument("rootfs / is the host's own root: give a separate directory",
                              path=path)
    return real


def _build_command():
    import click

    @click.command(context_settings={"allow_interspersed_args": False,
                                     "help_option_names": ["--help"]})
    @click.option("-i", "--interactive", is_flag=True, help="Keep stdin attached.")
    @click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-terminal.")
    @click.option("-d", "--detach", is_flag=True,
                  help="Run in the background and print the id.")
    @click.option("--rm", "auto_remove", is_flag=True, help="Remove the container when it exits.")
    @click.option("--name", help="Container name (unique).")
    @click.option("--init", is_flag=True, help="Run a reaping init as PID 1 that forwards "
                  "signals to the command.")
    @click.option("--restart", default="no", show_default=True,
                  help="Restart policy: no, always, unless-stopped, on-failure[:N].")
    @click.option("-h", "--hostname", help="Hostname inside the container (default: short id).")
    @click.option("-e", "--env", "env_items", multiple=True, metavar="KEY=VALUE",
                  help="Set an environment variable; a bare KEY copies the caller's value.")
    @click.option("--env-file", "env_files", multiple=True, metavar="FILE",
                  help="Read KEY=VALUE lines from FILE.")
    @click.option("-v", "--volume", "volumes", multiple=True, metavar="SRC:DST[:ro]",
                  help="Bind mount an absolute host path into the container.")
    @click.option("-w", "--workdir", help="Working directory inside the container.")
    @click.option("--rootfs", type=click.Path(file_okay=False),
                  help="Run this directory as the root instead of an image (it is not "
                       "modified).")
    @click.option("-m", "--memory",
                  help="Memory limit, in bytes or with b, k, m, g (100m = 100 MiB).")
    @click.option("--memory-swap", help="Memory plus swap limit (same units); -1 for unlimited.")
    @click.option("--memory-reservation", help="Soft memory limit (same units).")
    @click.option("-c", "--cpu-shares", type=int, help="Relative CPU weight (default 1024); "
                  "-cpushare is accepted too.")
    @click.option("--cpus", help="Number of CPUs, such as 1.5.")
    @click.option("--cpu-quota", type=int, help="CPU time per period, in microseconds.")
    @click.option("--cpu-period", type=int, help="CPU period, in microseconds.")
    @click.option("--cpuset-cpus", help="CPUs the container may use, such as 0-1 or 0,2.")
    @click.option("--cpuset-mems", help="Memory nodes the container may use.")
    @click.option("--pids-limit", type=int, help="Maximum number of processes.")
    @click.option("--blkio-weight", type=int, help="Block IO weight, 10 to 1000.")
    @click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
    @click.pass_obj
    def run(engine, **params):
        """Run COMMAND in a new container from IMAGE (default: busybox).

        \b
        donkey run -ti sh
        donkey run busybox ls -l /
        donkey run -v "$PWD":/work -w /work busybox sh test.sh
        """
        return run_container(engine, **params)

    return run


def __getattr__(name: str):
    # Module attribute hook (PEP 562): builds the click command on first use of `run`.
    if name == "run":
        command = _build_command()
        globals()["run"] = command
        return command
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
