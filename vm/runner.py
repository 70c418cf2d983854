"""Run the matrix: build assets, boot the guests (at most `jobs` at a time), collect results."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import json
import logging
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path

import paramiko

from vm import cache, guest, kernel, qemu, report, rootfs
from vm.kernel import AssetError
from vm.matrix import KERNELS, LAYOUTS, Combination, kernel_command_line

log = logging.getLogger(__name__)

REPOSITORY = cache.PACKAGE_DIR.parent
DOCUMENT = REPOSITORY / "docs" / "kernel-matrix.md"
# Run directories (logs, JUnit XML) kept in the cache; older ones are deleted after a run.
KEPT_RUNS = 20


@dataclasses.dataclass
class Options:
    combinations: list[Combination]
    keyword: str | None = None
    keep: bool = False
    jobs: int = 2
    memory_mib: int = 1024
    boot_timeout: float = 180.0
    full_timeout_minutes: int = 45
    smoke_timeout_minutes: int = 20
    refresh: bool = False
    write_doc: bool | None = None
    command: str = ""


@dataclasses.dataclass
class Context:
    """State shared by every combination: the assets, the packed checkout and the run directory."""

    root: Path
    run_dir: Path
    key: Path
    image: Path
    kernels: dict[str, Path]
    checkout: guest.Checkout
    test_paths: list[str]
    assets_seconds: float


def prepare(options: Options, root: Path, run_dir: Path) -> Context:
    rootfs.check_host_tools()
    started = time.monotonic()

    image = rootfs.rootfs_image(root)
    key = rootfs.ssh_key(root)
    kernels = {}
    for name in dict.fromkeys(c.kernel for c in options.combinations):
        kernels[name] = kernel.kernel_assets(name, root, refresh=options.refresh)
    assets_seconds = time.monotonic() - started
    print(f"vm: guest assets ready in {assets_seconds:.0f} s (cache {root})")

    checkout = guest.pack_checkout(REPOSITORY, run_dir / "checkout", root / "wheels" / "runtime")
    test_paths = guest.guest_test_paths(REPOSITORY)
    if not test_paths:
        raise AssetError(f"no tests/integration or tests/vm/guest directory in {REPOSITORY}")

    return Context(
        root=root,
        run_dir=run_dir,
        key=key,
        image=image,
        kernels=kernels,
        checkout=checkout,
        test_paths=test_paths,
        assets_seconds=assets_seconds,
    )


def run_combination(
    combination: Combination, options: Options, context: Context, cpus: int, echo: bool
) -> report.Result:
    """Boot one guest, run the tests in it and return the result; stop the guest unless kept.

    `echo` streams the guest's pytest output to stdout, which only makes sense for one guest.
    """
    result = report.Result(combination.kernel, combination.layout, combination.selection)
    result.cpus = cpus
    directory = context.run_dir / combination.name
    prefix = f"[{combination.name}] "
    started = time.monotonic()

    vm = qemu.Guest(
        combination.name,
        context.kernels[combination.kernel],
        context.image,
        kernel_command_line(combination.layout),
        directory,
        memory_mib=options.memory_mib,
        cpus=cpus,
    )
    host = None
    try:
        vm.start()
        result.boot_seconds = vm.wait_for_ssh(context.key, options.boot_timeout)
        print(f"{prefix}SSH up after {result.boot_seconds:.1f} s")

        host = guest.connect(vm.port, context.key, directory)
        result.probe = guest.probe_guest(host)
        result.release = result.probe["release"]
        result.observed_layout = guest.observed_layout(result.probe)
        if result.probe.get("setup_error"):
            raise AssetError(
                f"guest cgroup setup failed: {result.probe['setup_error']}; "
                f"the guest's boot messages are in {vm.console_log}"
            )

        result.install_seconds = guest.install_checkout(host, context.checkout)
        result.donkey_info, result.donkey_info_note = guest.donkey_info(host)
        if result.donkey_info_note:
            print(f"{prefix}note: {result.donkey_info_note}")
        (directory / "donkey-info.json").write_text(
            "null\n" if result.donkey_info is None else json.dumps(result.donkey_info, indent=2)
        )

        run_tests(host, combination, options, context, result, directory, prefix, echo)
        if options.keep:
            print(f"{prefix}kept running; connect with:\n  {vm.ssh_command(context.key)}")
    except (AssetError, qemu.GuestError, paramiko.SSHException, OSError) as error:
        result.status = "error"
        result.error = str(error).splitlines()[0]
        log.error("%s: %s", combination.name, error)
        print(f"{prefix}error: {error}")
    finally:
        if host is not None and not options.keep:
            host.backend.client.close()
        if not options.keep:
            vm.stop()
        result.total_seconds = time.monotonic() - started
        (directory / "result.json").write_text(json.dumps(result.to_json(), indent=2))
    return result


def run_tests(host, combination, options, context, result, directory, prefix, echo) -> None:
    timeout_minutes = (
        options.smoke_timeout_minutes if combination.smoke_only else options.full_timeout_minutes
    )
    command = guest.pytest_command(
        context.test_paths,
        smoke_only=combination.smoke_only,
        keyword=options.keyword,
        timeout_seconds=timeout_minutes * 60,
        environment={
            "DONKEY_VM_KERNEL": combination.kernel,
            "DONKEY_VM_LAYOUT": combination.layout,
        },
    )
    (directory / "pytest-command").write_text(command + "\n")
    print(f"{prefix}running {combination.selection} tests: {' '.join(context.test_paths)}")

    started = time.monotonic()
    result.pytest_exit = guest.stream_command(
        host, command, directory / "pytest.log", prefix, echo, timeout_minutes * 60 + 120
    )
    result.test_seconds = time.monotonic() - started

    if guest.fetch_file(host, guest.GUEST_JUNIT, directory / "junit.xml"):
        result.counts = report.parse_junit(directory / "junit.xml")
    result.status = report.status_of(result.counts, result.pytest_exit)
    counts = result.counts
    print(
        f"{prefix}{result.status}: {counts.passed} passed, "
        f"{counts.failed + counts.errors} failed, {counts.skipped} skipped "
        f"in {result.test_seconds:.0f} s (pytest exit {result.pytest_exit})"
    )


def execute(options: Options, context: Context) -> list[report.Result]:
    """Run the smoke combinations side by side first, then the whole-suite ones.

    Under TCG each vCPU is one host thread, so the whole suite (many short processes) runs
    fastest alone with every core, once the smoke runs no longer need them.
    """
    cores = os.cpu_count() or 1
    smoke = [c for c in options.combinations if c.smoke_only]
    full = [c for c in options.combinations if not c.smoke_only]

    results = []
    for phase in (smoke, full):
        if phase:
            results += run_phase(phase, options, context, cores)

    order = {(c.kernel, c.layout): index for index, c in enumerate(options.combinations)}
    return sorted(results, key=lambda result: order[(result.kernel, result.layout)])


def run_phase(
    combinations: list[Combination], options: Options, context: Context, cores: int
) -> list[report.Result]:
    jobs = min(options.jobs, len(combinations))
    if jobs == 1 or options.keep:
        # The main thread starts the guests, so a kept guest is not tied to a worker thread.
        return [run_combination(c, options, context, cores, echo=True) for c in combinations]

    cpus = max(1, cores // jobs)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(run_combination, c, options, context, cpus, False) for c in combinations
        ]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            qemu.stop_all()
            raise


def wait_for_interrupt(key: Path) -> None:
    for vm in qemu.alive_guests():
        print(f"vm: {vm.name} kept running: {vm.ssh_command(key)}")
    print("vm: press Ctrl-C (or send SIGTERM) to stop the kept guests.")
    try:
        while qemu.alive_guests():
            time.sleep(1)
        print("vm: every kept guest has exited")
    except (KeyboardInterrupt, qemu.Interrupted):
        print("vm: stopping the kept guests")


def run_matrix(options: Options) -> int:
    """Run the whole matrix; return the process exit code (0 only when every test passed)."""
    root = cache.cache_root()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = root / "runs" / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"vm: run directory {run_dir}")

    qemu.install_signal_handlers()
    started = time.monotonic()
    try:
        context = prepare(options, root, run_dir)
        results = execute(options, context)
        status = summarize(options, context, results, time.monotonic() - started)
        if options.keep:
            wait_for_interrupt(context.key)
        return status
    except (KeyboardInterrupt, qemu.Interrupted) as interruption:
        reason = interruption or "SIGINT"
        print(f"vm: interrupted ({reason}); stopping every guest", file=sys.stderr)
        return 130
    except AssetError as error:
        print(f"vm: {error}", file=sys.stderr)
        return 125
    finally:
        qemu.stop_all()
        leftovers = qemu.reap_check()
        if leftovers:
            print(f"vm: qemu processes still alive after stopping: {leftovers}", file=sys.stderr)
        shutil.rmtree(run_dir / "checkout", ignore_errors=True)
        prune_runs(root / "runs")


def prune_runs(runs: Path, keep: int = KEPT_RUNS) -> None:
    """Delete all but the newest `keep` run directories (their names sort by start time)."""
    for old in sorted(path for path in runs.iterdir() if path.is_dir())[:-keep]:
        log.info("removing the old run directory %s", old)
        shutil.rmtree(old, ignore_errors=True)


def summarize(options: Options, context: Context, results: list[report.Result], wall: float) -> int:
    """Print and save the matrix, update the doc for a complete run; return the exit code."""
    meta = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": options.command,
        "host": f"Linux {platform.release()}, {os.cpu_count()} CPUs",
        "wall_seconds": wall,
        "assets_seconds": context.assets_seconds,
        "jobs": min(options.jobs, len(options.combinations)),
        "memory_mib": options.memory_mib,
    }
    report.save_results(context.run_dir, results, meta)
    print()
    print(report.format_matrix(results))
    print(f"vm: matrix finished in {wall / 60:.1f} min; logs and JUnit XML in {context.run_dir}")
    for result in results:
        for name in result.counts.failures:
            print(f"vm: failed on {result.name}: {name}")

    write_doc = options.write_doc
    if write_doc is None:
        every = {(kernel_name, layout) for kernel_name in KERNELS for layout in LAYOUTS}
        complete = {(r.kernel, r.layout) for r in results} == every
        write_doc = complete and not options.keyword
    if write_doc:
        report.update_document(DOCUMENT, report.render_markdown(results, meta), DOCUMENT_TEMPLATE)
        print(f"vm: wrote {DOCUMENT.relative_to(REPOSITORY)}")
    else:
        print("vm: docs/kernel-matrix.md not updated (only a complete matrix without -k does)")

    return 0 if all(result.status == "ok" for result in results) else 1


DOCUMENT_TEMPLATE = "# Kernel matrix\n"


def quote_command(arguments: list[str]) -> str:
    return " ".join(shlex.quote(argument) for argument in arguments)
