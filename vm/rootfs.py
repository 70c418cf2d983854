"""The guest root image: a Debian bookworm minbase with Python, a test venv, sshd and busybox init.

One image serves every kernel; qemu opens it with snapshot=on, so guests never change it.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from vm import cache
from vm.kernel import MIRROR, AssetError, du_mib, run

log = logging.getLogger(__name__)

SUITE = "bookworm"
PACKAGES = (
    "python3",
    "python3-venv",
    "openssh-server",
    "busybox-static",
    "stress",
    "iproute2",
    "procps",
    "kmod",
    "util-linux",
    "psmisc",
    # For Vagrant: rsync for its synced folder, scp for its file provisioner.
    "rsync",
    "openssh-client",
)
# Installed into /opt/donkey-venv at build time, because the guest cannot reach PyPI;
# setuptools and wheel let the Vagrant box install the checkout without build isolation.
GUEST_REQUIREMENTS = ("pytest", "pexpect", "click", "setuptools>=61", "wheel")
GUEST_PYTHON_VERSION = "3.11"  # bookworm's python3
VENV = "/opt/donkey-venv"
# Room left in the image for images, containers and logs the suite writes. Without overlay
# donkey copies an image per container, and 2 GiB filled up during the suite. The image file
# is sparse and guests write to a snapshot overlay, so unused room costs no host disk.
FREE_SPACE_MIB = 8192


# Files of vm/guest/ installed into the image, with their target paths.
GUEST_FILES = {
    "donkey-guest-setup": "usr/local/sbin/donkey-guest-setup",
    "donkey-udhcpc-event": "usr/local/sbin/donkey-udhcpc-event",
    "shutdown": "usr/local/sbin/shutdown",
    "inittab": "etc/inittab",
}


def ssh_key(root: Path) -> Path:
    """Return the path of the test SSH private key, generating an Ed25519 key on first use."""
    private = root / "ssh" / "id_ed25519"
    if private.is_file():
        return private

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public_bytes = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    partial = private.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_bytes)
    private.with_suffix(".pub").write_bytes(public_bytes + b" donkey-vm-test\n")
    partial.rename(private)
    return private


def rootfs_recipe(public_key: bytes) -> str:
    files = [Path(__file__)] + [cache.GUEST_DIR / name for name in GUEST_FILES]
    return cache.recipe_hash(files, SUITE, *PACKAGES, *GUEST_REQUIREMENTS, public_key.decode())


def rootfs_image(root: Path) -> Path:
    """Return the cached root image, building it when its recipe changed."""
    key = ssh_key(root)
    public_key = key.with_suffix(".pub").read_bytes()
    image = root / "rootfs" / f"rootfs-{rootfs_recipe(public_key)}.ext4"

    with cache.locked(root / "locks" / "rootfs"):
        if image.is_file():
            return image

        log.info("building the guest root image %s (debootstrap %s)", image, SUITE)
        staging = root / "tmp" / f"rootfs-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        partial = image.with_suffix(".partial")
        try:
            build_tree(staging, root, public_key)
            size_mib = du_mib(staging) + FREE_SPACE_MIB
            image.parent.mkdir(parents=True, exist_ok=True)
            run(["mkfs.ext4", "-q", "-F", "-L", "donkey-root", "-d", str(staging)]
                + [str(partial), f"{size_mib}M"])  # fmt: skip
            partial.rename(image)
            for stale in image.parent.glob("rootfs-*.ext4"):
                if stale != image:
                    log.info("removing %s, built from an older recipe", stale)
                    stale.unlink()
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            partial.unlink(missing_ok=True)
        return image


def build_tree(staging: Path, root: Path, public_key: bytes) -> None:
    if shutil.which("debootstrap") is None:
        raise AssetError("debootstrap not found: install it with apt-get install debootstrap")
    run(
        ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}"]
        + [SUITE, str(staging), MIRROR]
    )

    install_guest_venv(staging, root)
    install_guest_files(staging, public_key)

    # apt's package lists and archives are useless offline and cost 100 MB.
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (staging / leftover).glob("*"):
            if path.is_file():
                path.unlink()


def download_wheels(directory: Path, requirements: list[str]) -> None:
    """Download wheels the guest's Python can install, through the host's pip configuration."""
    directory.mkdir(parents=True, exist_ok=True)
    run(
        [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check"]
        + ["--only-binary=:all:", "--python-version", GUEST_PYTHON_VERSION]
        + ["--platform", "manylinux2014_x86_64", "--platform", "any"]
        + ["-d", str(directory), *requirements]
    )


def install_guest_venv(staging: Path, root: Path) -> None:
    wheels = root / "wheels" / "guest"
    download_wheels(wheels, list(GUEST_REQUIREMENTS))
    target = staging / "opt" / "donkey-wheels"
    shutil.copytree(wheels, target, dirs_exist_ok=True)

    run(["chroot", str(staging), "/usr/bin/python3", "-m", "venv", VENV])
    run(
        ["chroot", str(staging), f"{VENV}/bin/pip", "install", "-q", "--no-index"]
        + ["--disable-pip-version-check", "--find-links", "/opt/donkey-wheels"]
        + list(GUEST_REQUIREMENTS)
    )


def install_guest_files(staging: Path, public_key: bytes) -> None:
    for name, target in GUEST_FILES.items():
        shutil.copy(cache.GUEST_DIR / name, staging / target)
        (staging / target).chmod(0o644 if target.startswith("etc/") else 0o755)

    ssh_dir = staging / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_bytes(public_key)
    (ssh_dir / "authorized_keys").chmod(0o600)

    sshd_config = staging / "etc/ssh/sshd_config.d/donkey-vm.conf"
    sshd_config.write_text(
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n"
    )
    (staging / "etc/hostname").write_text("donkey-guest\n")
    (staging / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.1.1 donkey-guest\n")
    (staging / "etc/fstab").write_text("# mounts come from donkey-guest-setup\n")

    # Interactive shells of `--keep` users find donkey and pytest from the venv.
    profile = staging / "etc/profile.d/donkey-vm.sh"
    profile.write_text(f'export PATH="{VENV}/bin:$PATH"\n')
    with open(staging / "root/.bashrc", "a") as handle:
        handle.write(f'export PATH="{VENV}/bin:$PATH"\n')


def check_host_tools() -> None:
    """Raise AssetError naming the package to install for the first missing build tool."""
    tools = {
        "debootstrap": "debootstrap",
        "mkfs.ext4": "e2fsprogs",
        "depmod": "kmod",
        "dpkg-deb": "dpkg",
        "apt-get": "apt",
        "zstd": "zstd",
        "qemu-system-x86_64": "qemu-system-x86",
    }
    for tool, package in tools.items():
        if shutil.which(tool) is None:
            raise AssetError(f"{tool} not found: install it with apt-get install {package}")
    if os.geteuid() != 0:
        raise AssetError("building the guest image needs root (debootstrap and chroot)")
