"""Work inside a booted guest over SSH: install this checkout, probe the layout, run pytest."""

from __future__ import annotations

import io
import json
import logging
import shlex
import shutil
import sys
import tarfile
import time
import tomllib
from pathlib import Path

import paramiko
import testinfra

from vm.kernel import AssetError, run
from vm.rootfs import VENV, download_wheels

log = logging.getLogger(__name__)

GUEST_SOURCE = "/root/donkey"
GUEST_WHEELS = "/root/wheelhouse"
GUEST_JUNIT = "/root/junit.xml"
# Not copied into the guest: version control, build output and host-side virtualenvs.
EXCLUDED_NAMES = {".git", ".nox", ".venv", "venv", "__pycache__", "build", "dist", ".pytest_cache"}
EXCLUDED_SUFFIXES = (".egg-info", ".pyc")


def excluded(name: str) -> bool:
    return name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES)


class Checkout:
    """This checkout packed for guests: a source tarball and a wheelhouse with donkey's wheel."""

    def __init__(self, source_tar: bytes, wheelhouse: Path):
        self.source_tar = source_tar
        self.wheelhouse = wheelhouse


def pack_checkout(repository: Path, workdir: Path, wheel_cache: Path) -> Checkout:
    """Build donkey's wheel from a copy of the work tree and tar the tree for the guest.

    The build runs in a copy so that setuptools' build/ and *.egg-info never land in the
    shared work tree.
    """
    copy = workdir / "source"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(repository, copy, ignore=lambda _dir, names: [n for n in names if excluded(n)])

    add_missing_readme(copy)
    wheelhouse = workdir / "wheelhouse"
    wheelhouse.mkdir(parents=True, exist_ok=True)
    try:
        run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check"]
            + ["--no-deps", "-w", str(wheelhouse), str(copy)])  # fmt: skip
    except AssetError as error:
        raise AssetError(f"building donkey's wheel from {repository} failed: {error}") from None

    # donkey's runtime dependencies, for the guest's offline pip.
    dependencies = project_dependencies(repository / "pyproject.toml")
    if dependencies:
        download_wheels(wheel_cache, dependencies)
        for wheel in wheel_cache.glob("*.whl"):
            shutil.copy(wheel, wheelhouse)

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(
            copy, arcname=".", filter=lambda info: None if excluded(Path(info.name).name) else info
        )
    return Checkout(buffer.getvalue(), wheelhouse)


def add_missing_readme(copy: Path) -> None:
    """Write a placeholder for a readme that pyproject.toml names but the checkout lacks.

    setuptools fails to build without it, and the tests do not need its text. The copy is
    private to this run, so the work tree is untouched.
    """
    with open(copy / "pyproject.toml", "rb") as handle:
        readme = tomllib.load(handle).get("project", {}).get("readme")
    if isinstance(readme, str) and not (copy / readme).exists():
        log.warning(
            "%s named in pyproject.toml is missing; the guest wheel uses a placeholder", readme
        )
        (copy / readme).write_text("donkey\n")


def project_dependencies(pyproject: Path) -> list[str]:
    with open(pyproject, "rb") as handle:
        return list(tomllib.load(handle).get("project", {}).get("dependencies", []))


def connect(port: int, key: Path, run_dir: Path):
    """Return a testinfra host for the guest, over testinfra's paramiko backend."""
    # The guest's host key changes with every image, so host key checking is off; the
    # forward only listens on 127.0.0.1.
    config = run_dir / "ssh_config"
    config.write_text("Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n")
    return testinfra.get_host(
        f"paramiko://root@127.0.0.1:{port}",
        ssh_config=str(config),
        ssh_identity_file=str(key),
        timeout=30,
    )


def client_of(host) -> paramiko.SSHClient:
    return host.backend.client


def install_checkout(host, checkout: Checkout) -> float:
    """Copy the checkout and wheelhouse over SFTP and pip install donkey; return seconds."""
    started = time.monotonic()
    client = client_of(host)

    sftp = client.open_sftp()
    try:
        sftp.putfo(io.BytesIO(checkout.source_tar), "/root/donkey-src.tar")
        try:
            sftp.mkdir(GUEST_WHEELS)
        except OSError:
            pass
        for wheel in sorted(checkout.wheelhouse.glob("*.whl")):
            sftp.put(str(wheel), f"{GUEST_WHEELS}/{wheel.name}")
    finally:
        sftp.close()

    command = (
        f"mkdir -p {GUEST_SOURCE} && tar -xf /root/donkey-src.tar -C {GUEST_SOURCE} && "
        f"{VENV}/bin/pip install -q --no-index --disable-pip-version-check "
        f"--find-links {GUEST_WHEELS} donkey"
    )
    result = host.run(command)
    if result.rc != 0:
        raise AssetError(
            f"installing donkey in the guest failed (exit {result.rc}): "
            f"{(result.stderr or result.stdout).strip()[-800:]}"
        )
    return time.monotonic() - started


def probe_guest(host) -> dict:
    """Return what the guest itself shows: kernel release and the cgroup mounts."""
    mounts = []
    for line in host.file("/proc/self/mounts").content_string.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] in ("cgroup", "cgroup2"):
            options = [
                o
                for o in fields[3].split(",")
                if o not in ("rw", "nosuid", "nodev", "noexec", "relatime")
            ]
            mounts.append({"path": fields[1], "type": fields[2], "options": ",".join(options)})

    cgroup2 = next((mount["path"] for mount in mounts if mount["type"] == "cgroup2"), None)
    controllers = ""
    if cgroup2:
        controllers = host.file(f"{cgroup2}/cgroup.controllers").content_string.strip()

    setup_error = host.file("/run/donkey-guest-layout.error")
    return {
        "release": host.check_output("uname -r"),
        "python": host.check_output(
            "python3 -c 'import platform; print(platform.python_version())'"
        ),
        "layout_setup": host.file("/run/donkey-guest-layout").content_string.strip()
        if host.file("/run/donkey-guest-layout").exists
        else None,
        "setup_error": setup_error.content_string.strip() if setup_error.exists else None,
        "cgroup2_mount": cgroup2,
        "cgroup2_controllers": controllers,
        "v1_hierarchies": [m["options"] for m in mounts if m["type"] == "cgroup"],
    }


def observed_layout(probe: dict) -> str:
    """Classify the guest's mounts as v1, hybrid or v2 (or none) the way a probe would."""
    if probe["cgroup2_mount"] == "/sys/fs/cgroup":
        return "v2"
    if probe["cgroup2_mount"]:
        return "hybrid"
    if probe["v1_hierarchies"]:
        return "v1"
    return "none"


def donkey_info(host) -> tuple[dict | None, str]:
    """Return (parsed `donkey info --json`, note); the note explains a missing or bad result."""
    result = host.run(f"{VENV}/bin/donkey info --json")
    if result.rc != 0:
        first_line = (result.stderr or result.stdout).strip().splitlines()[:1]
        return None, (
            f"`donkey info --json` failed with exit {result.rc}"
            + (f": {first_line[0]}" if first_line else "")
            + " (this checkout may not have the command yet)"
        )
    try:
        return json.loads(result.stdout), ""
    except json.JSONDecodeError as error:
        return None, f"`donkey info --json` printed invalid JSON: {error}"


def pytest_command(test_paths: list[str], *, smoke_only: bool, keyword: str | None,
                   timeout_seconds: int, environment: dict[str, str]) -> str:  # fmt: skip
    """Return the shell command that runs pytest in the guest, as root, with a time limit."""
    arguments = ["-p", "no:cacheprovider", "-ra", "-v", f"--junitxml={GUEST_JUNIT}"]
    arguments += ["-o", "junit_family=xunit2"]
    if smoke_only:
        arguments += ["-m", "smoke"]
    if keyword:
        arguments += ["-k", keyword]
    arguments += test_paths

    exports = " ".join(
        f"{name}={shlex.quote(value)}" for name, value in sorted(environment.items())
    )
    # SIGINT makes pytest stop, print its summary and still write the JUnit XML.
    return (
        f"cd {GUEST_SOURCE} && env PATH={VENV}/bin:/usr/sbin:/usr/bin:/sbin:/bin {exports} "
        f"timeout -s INT -k 30 {timeout_seconds} {VENV}/bin/pytest "
        + " ".join(shlex.quote(argument) for argument in arguments)
    )


def stream_command(
    host, command: str, log_path: Path, prefix: str, echo: bool, deadline_seconds: float
) -> int:
    """Run a command in the guest, writing its output to log_path (and stdout); return its exit.

    The command has its own time limit in the guest. `deadline_seconds` is the host's backstop
    for a guest that hangs as a whole: past it, GuestTimeout is raised.
    """
    transport = client_of(host).get_transport()
    channel = transport.open_session()
    channel.set_combine_stderr(True)
    channel.settimeout(10)
    channel.exec_command(command)
    deadline = time.monotonic() + deadline_seconds

    pending = b""
    with open(log_path, "wb") as log_file:
        while True:
            try:
                data = channel.recv(65536)
            except TimeoutError:
                if time.monotonic() > deadline:
                    channel.close()
                    raise GuestTimeout(
                        f"no end of `{command[:60]}...` after {deadline_seconds:.0f} s"
                    ) from None
                continue
            if not data:
                break
            log_file.write(data)
            log_file.flush()
            if echo:
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    print(f"{prefix}{line.decode(errors='replace')}", flush=True)
    if echo and pending:
        print(f"{prefix}{pending.decode(errors='replace')}", flush=True)
    return channel.recv_exit_status()


class GuestTimeout(OSError):
    """A command in the guest outlived the host's deadline."""


def fetch_file(host, remote: str, local: Path) -> bool:
    """Copy a file from the guest; return False when it does not exist."""
    sftp = client_of(host).open_sftp()
    try:
        sftp.get(remote, str(local))
        return True
    except FileNotFoundError:
        return False
    finally:
        sftp.close()


def guest_test_paths(repository: Path) -> list[str]:
    """Return the test directories to run in the guest: the integration suite and the
    pipeline's own guest checks."""
    paths = []
    for candidate in ("tests/integration", "tests/vm/guest"):
        if (repository / candidate).is_dir():
            paths.append(candidate)
    return paths
