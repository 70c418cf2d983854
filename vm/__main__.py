"""Command line of the kernel matrix: `python -m vm [run|build|report|vagrant-box] ...`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from vm import matrix

SUBCOMMANDS = ("run", "build", "report", "vagrant-box")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m vm", description=__doc__)
    top.add_argument("--verbose", action="store_true", help="log every command the build runs")
    commands = top.add_subparsers(dest="subcommand")

    run = commands.add_parser("run", help="boot the matrix and run the integration suite (default)")
    add_selection(run)
    run.add_argument("-k", dest="keyword", help="pytest -k expression; runs it in full everywhere")
    run.add_argument("--smoke", action="store_true", help="run only tests marked smoke everywhere")
    run.add_argument("--full", action="store_true", help="run the whole suite everywhere")
    run.add_argument(
        "--full-on",
        default="trixie:v2",
        metavar="KERNEL:LAYOUT",
        help="the combination that runs the whole suite when several are selected "
        "(default: trixie:v2); the others run the smoke subset",
    )
    run.add_argument(
        "--keep", action="store_true", help="leave the guests up and print SSH commands"
    )
    run.add_argument("--jobs", type=int, default=2, help="guests booted at once (default: 2)")
    run.add_argument("--memory", type=int, default=1024, help="guest memory in MiB (default: 1024)")
    run.add_argument(
        "--boot-timeout", type=float, default=180, help="seconds to wait for SSH (default: 180)"
    )
    run.add_argument(
        "--timeout",
        type=int,
        default=45,
        help="minutes the whole suite may take in one guest (default: 45; smoke runs get 20)",
    )
    run.add_argument("--refresh", action="store_true", help="fetch the newest kernels again")
    doc = run.add_mutually_exclusive_group()
    doc.add_argument("--write-doc", dest="write_doc", action="store_true", default=None,
                     help="update docs/kernel-matrix.md from this run")  # fmt: skip
    doc.add_argument("--no-doc", dest="write_doc", action="store_false",
                     help="never update docs/kernel-matrix.md")  # fmt: skip

    build = commands.add_parser("build", help="build and cache the guest assets only")
    add_selection(build)
    build.add_argument("--refresh", action="store_true", help="fetch the newest kernels again")

    summary = commands.add_parser("report", help="print the matrix of a saved run again")
    summary.add_argument("results", type=Path, help="results.json of a run directory")
    summary.add_argument("--write-doc", action="store_true", help="update docs/kernel-matrix.md")

    box = commands.add_parser("vagrant-box", help="pack the cached guest as a libvirt Vagrant box")
    box.add_argument("--kernel", default="bookworm", choices=list(matrix.KERNELS))
    box.add_argument("--output", type=Path, help="box file (default: in the cache directory)")
    return top


def add_selection(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--kernel",
        default="all",
        help=f"comma-separated Debian suites: {', '.join(matrix.KERNELS)} or all (default: all)",
    )
    command.add_argument(
        "--cgroup",
        default="all",
        help=f"comma-separated cgroup layouts: {', '.join(matrix.LAYOUTS)} or all (default: all)",
    )


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in SUBCOMMANDS + ("-h", "--help", "--verbose"):
        argv = ["run", *argv]
    options = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if options.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Asset builds and guest starts take a while, so their progress is logged by default.
    logging.getLogger("vm").setLevel(logging.DEBUG if options.verbose else logging.INFO)
    # paramiko logs every refused connection while a guest boots; the runner reports timeouts.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)

    try:
        if options.subcommand == "report":
            return command_report(options)
        if options.subcommand == "vagrant-box":
            from vm import vagrant

            return vagrant.build_box(options.kernel, options.output)

        kernels = matrix.parse_choice(options.kernel, tuple(matrix.KERNELS), "--kernel")
        layouts = matrix.parse_choice(options.cgroup, matrix.LAYOUTS, "--cgroup")
        if options.subcommand == "build":
            return command_build(kernels, options.refresh)
        return command_run(options, kernels, layouts, argv)
    except ValueError as error:
        print(f"vm: {error}", file=sys.stderr)
        return 2


def command_build(kernels: list[str], refresh: bool) -> int:
    from vm import cache, kernel, rootfs
    from vm.kernel import AssetError

    try:
        rootfs.check_host_tools()
        root = cache.cache_root()
        print(f"root image: {rootfs.rootfs_image(root)}")
        for name in kernels:
            print(f"{name}: {kernel.kernel_assets(name, root, refresh=refresh)}")
    except AssetError as error:
        print(f"vm: {error}", file=sys.stderr)
        return 125
    return 0


def command_report(options) -> int:
    from vm import report, runner

    results, meta = report.load_results(options.results)
    print(report.format_matrix(results))
    if options.write_doc:
        generated = report.render_markdown(results, meta)
        report.update_document(runner.DOCUMENT, generated, runner.DOCUMENT_TEMPLATE)
        print(f"vm: wrote {runner.DOCUMENT}")
    return 0


def command_run(options, kernels: list[str], layouts: list[str], argv: list[str]) -> int:
    from vm import runner

    full_kernel, _, full_layout = options.full_on.partition(":")
    if full_kernel not in matrix.KERNELS or full_layout not in matrix.LAYOUTS:
        raise ValueError(f"invalid --full-on value {options.full_on!r}: expected KERNEL:LAYOUT")
    if options.jobs < 1:
        raise ValueError(f"invalid --jobs value {options.jobs}: expected 1 or more")

    combinations = matrix.plan(
        kernels,
        layouts,
        smoke=options.smoke,
        full=options.full,
        keyword=options.keyword,
        full_on=(full_kernel, full_layout),
    )
    arguments = runner.quote_command(argv[1:])
    run_options = runner.Options(
        combinations=combinations,
        keyword=options.keyword,
        keep=options.keep,
        jobs=options.jobs,
        memory_mib=options.memory,
        boot_timeout=options.boot_timeout,
        full_timeout_minutes=options.timeout,
        refresh=options.refresh,
        write_doc=options.write_doc,
        command=f"nox -s vm -- {arguments}" if arguments else "nox -s vm",
    )
    return runner.run_matrix(run_options)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
