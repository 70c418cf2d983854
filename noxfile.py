"""Sessions: unit, integration, lint, and the longer ones (vm, bench).

`nox` (lint, unit, integration) is the test command the README and .ci/run use.
"""

import nox

nox.options.sessions = ["lint", "unit", "integration"]
nox.options.reuse_existing_virtualenvs = True

TEST_DEPS = ["pytest>=7", "pexpect>=4.8"]


@nox.session
def lint(session):
    session.install("ruff")
    session.run("ruff", "check", "donkey", "tests", "bench", "vm", "noxfile.py")


@nox.session
def unit(session):
    session.install("-e", ".", *TEST_DEPS)
    session.run("pytest", "-q", "tests/unit", *session.posargs)


@nox.session
def integration(session):
    session.install("-e", ".", *TEST_DEPS)
    session.run("pytest", "-q", "-ra", "tests/integration", *session.posargs)


@nox.session
def bench(session):
    """Benchmarks against runc, as root: prints a table, writes bench/results/<time>.json."""
    # A regular install, as deployed: an editable one adds an import hook to every start.
    session.install("--force-reinstall", "--no-deps", ".")
    session.install("click>=8.1")
    session.run("python", "-m", "bench", *session.posargs)


VM_DEPS = ["paramiko>=3", "pytest-testinfra>=10"]


@nox.session
def vm(session):
    """Kernel matrix in qemu, as root: nox -s vm -- [--kernel K] [--cgroup L] [-k EXPR] [--keep]."""
    session.install(*VM_DEPS)
    session.run("python", "-m", "vm", "run", *session.posargs)


@nox.session
def vagrant_box(session):
    """Pack the cached kernel-matrix guest as a libvirt Vagrant box: nox -s vagrant_box."""
    session.install(*VM_DEPS)
    session.run("python", "-m", "vm", "vagrant-box", *session.posargs)
