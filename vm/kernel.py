"""Kernel assets: the Debian kernel package, its uncompressed vmlinux, a module disk and an initrd.

Each suite's packages come through a private apt state under the cache directory, so the host's
own apt sources stay untouched.
"""

from __future__ import annotations

import gzip
import logging
import lzma
import os
import shutil
import struct
import subprocess
from pathlib import Path

from vm import cache

log = logging.getLogger(__name__)

MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

# Modules the initramfs loads before it can mount the root image and reach the network; the
# closure over modules.dep is added. Names missing from a kernel, or built in, are skipped.
INITRD_MODULES = (
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "crc32c_generic",
    "ext4",
)

# The suite whose busybox-static goes into every initramfs (the root image is bookworm too).
BUSYBOX_SUITE = "bookworm"


class AssetError(RuntimeError):
    """A guest asset could not be built; the message names the step and the fix."""


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a build command, raising AssetError with its output when it fails."""
    log.debug("running %s", " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise AssetError(
            f"command failed with exit {result.returncode}: {' '.join(command)}\n  "
            + "\n  ".join(output)
        )
    return result


class AptSuite:
    """apt-get and apt-cache over one Debian suite, with state kept in a private directory."""

    def __init__(self, suite: str, root: Path):
        self.suite = suite
        self.root = root

    def options(self) -> list[str]:
        return [
            "-o", f"Dir::Etc::SourceList={self.root / 'sources.list'}",
            "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::State::Lists={self.root / 'lists'}",
            "-o", f"Dir::State::status={self.root / 'status'}",
            "-o", f"Dir::Cache={self.root / 'cache'}",
            "-o", "APT::Architecture=amd64",
            "-o", "APT::Sandbox::User=root",
            "-o", "Debug::NoLocking=1",
        ]  # fmt: skip

    def update(self) -> None:
        (self.root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.root / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        (self.root / "status").touch()
        signed = f"[signed-by={KEYRING}]"
        (self.root / "sources.list").write_text(
            f"deb {signed} {MIRROR} {self.suite} main\n"
            f"deb {signed} {SECURITY_MIRROR} {self.suite}-security main\n"
        )
        run(["apt-get", *self.options(), "-q", "update"])

    def kernel_package(self) -> str:
        """Return the versioned kernel package the suite's linux-image-amd64 depends on."""
        output = run(["apt-cache", *self.options(), "depends", "linux-image-amd64"]).stdout
        for line in output.splitlines():
            name = line.strip().removeprefix("Depends:").strip()
            if line.strip().startswith("Depends:") and name.startswith("linux-image-"):
                return name
        raise AssetError(
            f"no linux-image-* dependency of linux-image-amd64 in {self.suite}:\n{output}"
        )

    def download(self, package: str, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.deb"):
            stale.unlink()
        run(["apt-get", *self.options(), "-q", "download", package], cwd=directory)
        debs = sorted(directory.glob("*.deb"))
        if len(debs) != 1:
            raise AssetError(f"expected one .deb for {package} in {directory}, found {debs}")
        return debs[0]


def extract_vmlinux(bzimage: bytes) -> bytes:
    """Return the uncompressed ELF kernel inside a bzImage.

    Booting the ELF directly (qemu uses its PVH entry) skips the in-guest decompression, which
    costs seconds under TCG. The x86 boot protocol (2.08 and later) records where the
    compressed payload sits: `payload_offset` (0x248) from the start of the protected-mode code,
    which follows `setup_sects` (0x1f1, 0 meaning 4) 512-byte setup sectors and the boot sector.
    """
    if len(bzimage) < 0x250 or bzimage[0x202:0x206] != b"HdrS":
        raise AssetError("not a bzImage: the setup header signature HdrS is missing")
    version = struct.unpack_from("<H", bzimage, 0x206)[0]
    if version < 0x208:
        raise AssetError(f"boot protocol {version:#x} predates payload_offset (2.08)")

    setup_sectors = bzimage[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sectors + 1) * 512 + payload_offset
    payload = bzimage[start : start + payload_length]

    kernel = decompress(payload)
    if kernel[:4] != b"\x7fELF":
        raise AssetError("the decompressed bzImage payload is not an ELF file")
    return kernel


def decompress(payload: bytes) -> bytes:
    """Decompress a kernel payload in any format Debian kernels use (gzip, xz, zstd)."""
    if payload[:2] == b"\x1f\x8b":
        return gzip.decompress(payload)
    if payload[:6] == b"\xfd7zXZ\x00":
        # The payload may carry the uncompressed size after the stream; ignore it.
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
    if payload[:4] == b"\x28\xb5\x2f\xfd":
        if shutil.which("zstd") is None:
            raise AssetError("the kernel is zstd-compressed: install zstd (apt-get install zstd)")
        # The trailing size field makes zstd report an error after it wrote the whole frame.
        result = subprocess.run(["zstd", "-dc"], input=payload, capture_output=True)
        return result.stdout
    raise AssetError(f"unknown kernel compression, payload starts with {payload[:6].hex()}")


def parse_modules_dep(text: str) -> dict[str, list[str]]:
    """Parse modules.dep into {module path: [dependency paths]}."""
    dependencies = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        module, _, rest = line.partition(":")
        dependencies[module.strip()] = rest.split()
    return dependencies


def module_name(path: str) -> str:
    """Return the module name of a path such as kernel/fs/ext4/ext4.ko.xz (ext4)."""
    base = os.path.basename(path).split(".ko")[0]
    return base.replace("-", "_")


def load_order(dependencies: dict[str, list[str]], wanted: tuple[str, ...]) -> list[str]:
    """Return module paths for `wanted` and everything they depend on, dependencies first.

    Names that are not in modules.dep (built in, or absent from this kernel) are skipped.
    """
    by_name = {module_name(path): path for path in dependencies}
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dependency in dependencies.get(path, []):
            visit(dependency)
        order.append(path)

    for name in wanted:
        path = by_name.get(name.replace("-", "_"))
        if path is not None:
            visit(path)
    return order


def read_module(path: Path) -> bytes:
    """Return a module's bytes, decompressed, because busybox insmod takes plain .ko files."""
    data = path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if path.name.endswith(".ko.zst"):
        return subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True).stdout
    if path.name.endswith(".ko.gz"):
        return gzip.decompress(data)
    return data


def newc_archive(entries: list[tuple[str, int, bytes]]) -> bytes:
    """Build a cpio archive in the newc format the kernel unpacks as an initramfs.

    Each entry is (path, mode, data); a symlink's data is its target.
    """
    chunks = []
    for inode, (name, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], start=1):
        encoded = name.encode() + b"\0"
        fields = [inode, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        header = b"070701" + b"".join(b"%08X" % field for field in fields)
        chunks.append(header + encoded)
        chunks.append(b"\0" * (-(len(header) + len(encoded)) % 4))
        chunks.append(data)
        chunks.append(b"\0" * (-len(data) % 4))
    return b"".join(chunks)


def build_initrd(busybox: bytes, modules_root: Path, order: list[str]) -> bytes:
    """Return a gzip-compressed initramfs with busybox, the init script and `order`'s modules."""
    directory = 0o040755
    regular = 0o100644
    executable = 0o100755

    entries: list[tuple[str, int, bytes]] = [
        ("bin", directory, b""),
        ("dev", directory, b""),
        ("proc", directory, b""),
        ("sys", directory, b""),
        ("newroot", directory, b""),
        ("modules", directory, b""),
        ("bin/busybox", executable, busybox),
        ("init", executable, (cache.GUEST_DIR / "initramfs-init").read_bytes()),
    ]

    names = []
    for path in order:
        name = module_name(path) + ".ko"
        entries.append((f"modules/{name}", regular, read_module(modules_root / path)))
        names.append(name)
    entries.append(("modules/load-order", regular, ("\n".join(names) + "\n").encode()))

    return gzip.compress(newc_archive(entries), compresslevel=6)


def extract_busybox(apt: AptSuite, workdir: Path) -> bytes:
    deb = apt.download("busybox-static", workdir / "busybox")
    tree = workdir / "busybox" / "tree"
    run(["dpkg-deb", "-x", str(deb), str(tree)])
    for candidate in ("bin/busybox", "usr/bin/busybox"):
        if (tree / candidate).is_file():
            return (tree / candidate).read_bytes()
    raise AssetError(f"busybox-static from {deb.name} contains no bin/busybox")


def prepare_modules(modules_dir: Path, release: str, workdir: Path) -> Path:
    """Move the package's module tree under a scratch root and run depmod there.

    The package ships no modules.dep (its postinst runs depmod), and both the initramfs
    builder and the guest's modprobe (overlay, veth and the rest on demand) need one.
    """
    base = workdir / "depmod"
    target = base / "lib" / "modules" / release
    target.parent.mkdir(parents=True)
    shutil.move(str(modules_dir), str(target))
    run(["depmod", "-b", str(base), release])
    return target


def build_modules_disk(modules_dir: Path, image: Path) -> None:
    size_mib = du_mib(modules_dir) * 5 // 4 + 64
    run(
        [
            "mkfs.ext4",
            "-q",
            "-F",
            "-L",
            "modules",
            "-d",
            str(modules_dir),
            str(image),
            f"{size_mib}M",
        ]
    )


def du_mib(path: Path) -> int:
    return int(run(["du", "-sm", str(path)]).stdout.split()[0])


def kernel_recipe(suite: str) -> str:
    return cache.recipe_hash(
        [Path(__file__), cache.GUEST_DIR / "initramfs-init"], suite, *INITRD_MODULES
    )


def kernel_assets(suite: str, root: Path, *, refresh: bool = False) -> Path:
    """Return the directory holding vmlinux, initrd.img, modules.ext4 and release for `suite`.

    A cached directory for the same recipe is reused; `refresh` rebuilds it, picking up a newer
    kernel from the mirror.
    """
    directory = root / "kernels" / f"{suite}-{kernel_recipe(suite)}"
    with cache.locked(root / "locks" / f"kernel-{suite}"):
        if (directory / "release").is_file() and not refresh:
            return directory

        log.info("building kernel assets for %s in %s", suite, directory)
        workdir = root / "tmp" / f"kernel-{suite}-{os.getpid()}"
        shutil.rmtree(workdir, ignore_errors=True)
        staging = directory.with_name(directory.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            build_kernel_assets(suite, root, workdir, staging)
            shutil.rmtree(directory, ignore_errors=True)
            staging.rename(directory)
            for stale in directory.parent.glob(f"{suite}-*"):
                if stale != directory and not stale.name.endswith(".partial"):
                    log.info("removing %s, built from an older recipe", stale)
                    shutil.rmtree(stale, ignore_errors=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            shutil.rmtree(staging, ignore_errors=True)
        return directory


def build_kernel_assets(suite: str, root: Path, workdir: Path, out: Path) -> None:
    apt = AptSuite(suite, root / "apt" / suite)
    apt.update()
    package = apt.kernel_package()
    deb = apt.download(package, workdir / "deb")
    tree = workdir / "tree"
    run(["dpkg-deb", "-x", str(deb), str(tree)])

    # Bullseye and bookworm ship lib/modules, trixie (merged /usr) usr/lib/modules.
    module_dirs = list(tree.glob("lib/modules/*")) + list(tree.glob("usr/lib/modules/*"))
    vmlinuz = list(tree.glob("boot/vmlinuz-*"))
    if len(module_dirs) != 1 or len(vmlinuz) != 1:
        raise AssetError(f"{deb.name}: expected one vmlinuz and one module tree in the package")
    release = module_dirs[0].name

    (out / "vmlinux").write_bytes(extract_vmlinux(vmlinuz[0].read_bytes()))

    busybox_apt = apt
    if suite != BUSYBOX_SUITE:
        busybox_apt = AptSuite(BUSYBOX_SUITE, root / "apt" / BUSYBOX_SUITE)
        busybox_apt.update()
    busybox = extract_busybox(busybox_apt, workdir)

    modules = prepare_modules(module_dirs[0], release, workdir)
    order = load_order(parse_modules_dep((modules / "modules.dep").read_text()), INITRD_MODULES)
    (out / "initrd.img").write_bytes(build_initrd(busybox, modules, order))
    build_modules_disk(modules, out / "modules.ext4")
    (out / "package").write_text(f"{deb.name}\n")
    (out / "release").write_text(f"{release}\n")
