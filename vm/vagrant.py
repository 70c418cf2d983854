"""Pack the cached guest as a libvirt Vagrant box (`nox -s vagrant_box`).

The box boots the same root image and Debian kernel as the matrix, through libvirt's direct
kernel boot. It has no separate module disk, so the kernel's modules are written into a copy
of the root image with debugfs (no loop mount needed).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tarfile
from pathlib import Path

from vm import cache, kernel, rootfs
from vm.kernel import AssetError, du_mib, run
from vm.matrix import kernel_command_line

log = logging.getLogger(__name__)

BOX_VAGRANTFILE = """\
# Vagrantfile inside the donkey test box: direct kernel boot of the Debian {suite} kernel
# ({release}) with busybox init; the cgroup layout comes from the kernel command line.
Vagrant.configure("2") do |config|
  config.ssh.username = "root"
  config.ssh.private_key_path = File.expand_path("id_ed25519", __dir__)
  config.ssh.insert_key = false
  config.vm.synced_folder ".", "/vagrant", disabled: true

  config.vm.provider :libvirt do |libvirt|
    libvirt.kernel = File.expand_path("vmlinux", __dir__)
    libvirt.initrd = File.expand_path("initrd.img", __dir__)
    libvirt.cmd_line = "{command_line} donkey.net=dhcp"
    libvirt.disk_bus = "virtio"
    libvirt.memory = 1024
  end
end
"""


def debugfs_script(tree: Path, target: str) -> str:
    """Return debugfs commands that copy `tree` (directories, files, symlinks) to `target`."""
    # debugfs creates no missing parents, and a mkdir of an existing directory only prints
    # an error, so every ancestor is listed.
    ancestors = list(reversed(Path(target).parents))[1:]
    commands = [f'mkdir "{ancestor}"' for ancestor in ancestors] + [f'mkdir "{target}"']
    for directory, subdirectories, files in os.walk(tree):
        relative = Path(directory).relative_to(tree)
        destination = f"{target}/{relative}" if str(relative) != "." else target
        for name in sorted(subdirectories):
            path = Path(directory) / name
            if path.is_symlink():
                commands.append(f'symlink "{destination}/{name}" "{os.readlink(path)}"')
            else:
                commands.append(f'mkdir "{destination}/{name}"')
        for name in sorted(files):
            path = Path(directory) / name
            if path.is_symlink():
                commands.append(f'symlink "{destination}/{name}" "{os.readlink(path)}"')
            else:
                commands.append(f'write "{path}" "{destination}/{name}"')
    return "\n".join(commands) + "\n"


def build_box(suite: str, output: Path | None) -> int:
    try:
        rootfs.check_host_tools()
        for tool, package in (("debugfs", "e2fsprogs"), ("qemu-img", "qemu-utils")):
            if shutil.which(tool) is None:
                raise AssetError(f"{tool} not found: install it with apt-get install {package}")
        box = pack_box(suite, output)
    except AssetError as error:
        print(f"vm: {error}")
        return 125
    print(f"vm: wrote {box}\nadd it with: vagrant box add --name donkey/{suite} {box}")
    return 0


def pack_box(suite: str, output: Path | None) -> Path:
    root = cache.cache_root()
    image = rootfs.rootfs_image(root)
    assets = kernel.kernel_assets(suite, root)
    release = (assets / "release").read_text().strip()
    box = output or root / "boxes" / f"donkey-{suite}-{image.stem}.box"

    workdir = root / "tmp" / f"box-{os.getpid()}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    try:
        modules = workdir / "modules"
        modules.mkdir()
        run(["debugfs", "-R", f"rdump / {modules}", str(assets / "modules.ext4")])
        shutil.rmtree(modules / "lost+found", ignore_errors=True)

        disk = workdir / "root.ext4"
        shutil.copy(image, disk)
        grow_mib = du_mib(modules) + 256
        run(["e2fsck", "-f", "-p", str(disk)])
        run(["truncate", "-s", f"+{grow_mib}M", str(disk)])
        run(["resize2fs", str(disk)])
        script = workdir / "debugfs-commands"
        script.write_text(debugfs_script(modules, f"/usr/lib/modules/{release}"))
        run(["debugfs", "-w", "-f", str(script), str(disk)])

        contents = workdir / "box"
        contents.mkdir()
        run(["qemu-img", "convert", "-O", "qcow2", str(disk), str(contents / "box.img")])
        virtual_gib = -(-disk.stat().st_size // 2**30)
        metadata = {"provider": "libvirt", "format": "qcow2", "virtual_size": virtual_gib}
        (contents / "metadata.json").write_text(json.dumps(metadata) + "\n")
        (contents / "Vagrantfile").write_text(
            BOX_VAGRANTFILE.format(
                suite=suite, release=release, command_line=kernel_command_line("v2")
            )
        )
        shutil.copy(assets / "vmlinux", contents / "vmlinux")
        shutil.copy(assets / "initrd.img", contents / "initrd.img")
        # Vagrant logs in as root with the test key, so the box carries it. The key is
        # generated per cache directory and only opens throwaway test machines.
        shutil.copy(rootfs.ssh_key(root), contents / "id_ed25519")

        box.parent.mkdir(parents=True, exist_ok=True)
        partial = box.with_suffix(".partial")
        with tarfile.open(partial, "w:gz", compresslevel=1) as archive:
            for path in sorted(contents.iterdir()):
                archive.add(path, arcname=path.name)
        partial.rename(box)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log.info("Vagrant box for %s (%s) in %s", suite, release, box)
    return box
