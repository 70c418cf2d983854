"""Assemble an image's root filesystem from a recipe and files on the host."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

from donkey.errors import DonkeyError, NotFound
from donkey.logs.engine import get_logger

log = get_logger("image")

_PT_INTERP = 3


def is_static_elf(path: str) -> bool:
    """Return True if path is an ELF executable with no program interpreter (PT_INTERP)."""
    with open(path, "rb") as stream:
        header = stream.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF":
            return False
        is_64 = header[4] == 2
        endian = "<" if header[5] == 1 else ">"
        if is_64:
            phoff, = struct.unpack_from(endian + "Q", header, 0x20)
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 0x36)
        else:
            phoff, = struct.unpack_from(endian + "I", header, 0x1C)
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 0x2A)
        for index in range(phnum):
            stream.seek(phoff + index * phentsize)
            p_type, = struct.unpack(endian + "I", stream.read(4))
            if p_type == _PT_INTERP:
                return False
    return True


def _install_hint(recipe) -> str:
    return "; ".join(f"{what}: {how}" for what, how in recipe.requires.items())


def _find_static_busybox(recipe) -> str:
    dynamic = []
    for candidate in recipe.busybox:
        if os.path.isfile(candidate):
            if is_static_elf(candidate):
                return candidate
            dynamic.append(candidate)
    found = f" ({', '.join(dynamic)} is dynamically linked)" if dynamic else ""
    raise NotFound(
        f"no static busybox found at {', '.join(recipe.busybox)}{found}, needed to build "
        f"the {recipe.name} image: install it with apt-get install busybox-static",
        path=recipe.busybox[0] if recipe.busybox else None,
    )


def _install_busybox(source: str, rootfs: str) -> None:
    binary = os.path.join(rootfs, "bin", "busybox")
    shutil.copy2(source, binary)
    os.chmod(binary, 0o755)
    listing = subprocess.run([source, "--list-full"], capture_output=True, text=True,
                             check=True).stdout
    for applet in listing.split():
        link = os.path.join(rootfs, applet.lstrip("/"))
        if os.path.lexists(link) or applet.endswith("/busybox"):
            continue
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.link(binary, link)


def _shared_libraries(binary: str) -> list[str]:
    """List the absolute paths of binary's libraries and loader, as ldd prints them."""
    result = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if result.returncode != 0:
        # "not a dynamic executable": a static binary needs nothing more.
        return []
    paths = []
    for line in result.stdout.splitlines():
        parts = line.split()
        if "=>" in parts:
            target = parts[parts.index("=>") + 1]
            if target.startswith("/"):
                paths.append(target)
        elif parts and parts[0].startswith("/"):
            paths.append(parts[0])
    return paths


def _copy_into(rootfs: str, host_path: str) -> None:
    destination = os.path.join(rootfs, host_path.lstrip("/"))
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    shutil.copy2(os.path.realpath(host_path), destination)


def build_rootfs(recipe, rootfs: str, base_rootfs: str | None) -> None:
    if base_rootfs:
        # Hard links are enough: images are never written to, containers get a layer.
        subprocess.run(["cp", "-a", "--link", "-T", base_rootfs, rootfs], check=True)

    for directory, mode in recipe.directories.items():
        path = os.path.join(rootfs, directory.lstrip("/"))
        os.makedirs(path, exist_ok=True)
        os.chmod(path, int(mode, 8))

    if recipe.busybox:
        _install_busybox(_find_static_busybox(recipe), rootfs)

    for binary in recipe.host_binaries:
        if not os.path.isfile(binary):
            raise NotFound(
                f"{binary} not found on the host, needed to build the {recipe.name} image: "
                f"{_install_hint(recipe) or 'install it'}",
                path=binary,
            )
        _copy_into(rootfs, binary)
        for library in _shared_libraries(binary):
            _copy_into(rootfs, library)

    for name, content in recipe.files.items():
        path = os.path.join(rootfs, name.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as stream:
            stream.write(content)

    if not os.listdir(rootfs):
        raise DonkeyError(f"recipe {recipe.path} produced an empty root filesystem",
                          path=recipe.path)
    log.debug("built rootfs %s", rootfs)
