"""Kernel asset helpers (vm/kernel.py): vmlinux extraction, module order, initramfs archive."""

import gzip
import lzma
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vm import kernel  # noqa: E402

ELF = b"\x7fELF" + bytes(range(60)) * 20


def make_bzimage(payload: bytes, setup_sectors: int = 3, payload_offset: int = 0x40) -> bytes:
    """Build the parts of a bzImage that extract_vmlinux reads: the setup header and payload."""
    # A setup_sects of 0 means 4, as in boot loaders that predate the field.
    image = bytearray(((setup_sectors or 4) + 1) * 512 + payload_offset)
    image[0x1F1] = setup_sectors
    image[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", image, 0x206, 0x20F)
    struct.pack_into("<II", image, 0x248, payload_offset, len(payload))
    # The real image has the decompressor stub around the payload; trailing bytes must not
    # be taken as part of it.
    return bytes(image) + payload + b"\xaa" * 100


def test_extract_gzip_payload():
    assert kernel.extract_vmlinux(make_bzimage(gzip.compress(ELF))) == ELF


def test_extract_xz_payload():
    payload = lzma.compress(ELF, format=lzma.FORMAT_XZ) + struct.pack("<I", len(ELF))
    assert kernel.extract_vmlinux(make_bzimage(payload, setup_sectors=0)) == ELF


def test_extract_rejects_non_bzimage():
    with pytest.raises(kernel.AssetError, match="HdrS"):
        kernel.extract_vmlinux(b"\0" * 4096)


def test_extract_rejects_non_elf_payload():
    with pytest.raises(kernel.AssetError, match="not an ELF"):
        kernel.extract_vmlinux(make_bzimage(gzip.compress(b"MZ not a kernel")))


def test_extract_rejects_unknown_compression():
    with pytest.raises(kernel.AssetError, match="unknown kernel compression"):
        kernel.extract_vmlinux(make_bzimage(b"\x02\x21\x4c\x18" + ELF))


MODULES_DEP = """\
kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/mbcache.ko.xz kernel/fs/jbd2/jbd2.ko.xz
kernel/fs/jbd2/jbd2.ko.xz:
kernel/fs/mbcache.ko.xz:
kernel/lib/crc16.ko.xz:
kernel/drivers/block/virtio_blk.ko.xz:
kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz \
kernel/net/core/failover.ko.xz
kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz
kernel/net/core/failover.ko.xz:
kernel/arch/x86/crypto/crc32c-intel.ko.xz:
"""


def test_load_order_dependencies_first():
    order = kernel.load_order(kernel.parse_modules_dep(MODULES_DEP), ("virtio_net", "ext4"))
    names = [kernel.module_name(path) for path in order]
    assert names == ["failover", "net_failover", "virtio_net", "crc16", "mbcache", "jbd2", "ext4"]


def test_load_order_skips_builtin_modules():
    # virtio_pci is built into 6.12, so modules.dep does not list it.
    order = kernel.load_order(kernel.parse_modules_dep(MODULES_DEP), ("virtio_pci", "virtio_blk"))
    assert order == ["kernel/drivers/block/virtio_blk.ko.xz"]


def test_module_name_normalises_dashes():
    assert kernel.module_name("kernel/arch/x86/crypto/crc32c-intel.ko.xz") == "crc32c_intel"


def parse_newc(archive: bytes) -> dict[str, tuple[int, bytes]]:
    entries = {}
    offset = 0
    while True:
        assert archive[offset : offset + 6] == b"070701"
        fields = [int(archive[offset + 6 + 8 * i : offset + 14 + 8 * i], 16) for i in range(13)]
        mode, size, name_size = fields[1], fields[6], fields[11]
        name_start = offset + 110
        name = archive[name_start : name_start + name_size - 1].decode()
        data_start = name_start + name_size + (-(110 + name_size) % 4)
        data = archive[data_start : data_start + size]
        offset = data_start + size + (-size % 4)
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, data)


def test_newc_archive_round_trip():
    archive = kernel.newc_archive(
        [("bin", 0o040755, b""), ("bin/busybox", 0o100755, b"12345"), ("init", 0o100755, b"#!")]
    )
    assert len(archive) % 4 == 0
    entries = parse_newc(archive)
    assert entries["bin"] == (0o040755, b"")
    assert entries["bin/busybox"] == (0o100755, b"12345")
    assert entries["init"] == (0o100755, b"#!")


def test_initrd_contains_modules_and_order(tmp_path):
    module = tmp_path / "kernel" / "fs" / "ext4"
    module.mkdir(parents=True)
    (module / "ext4.ko.xz").write_bytes(lzma.compress(b"ext4 module", format=lzma.FORMAT_XZ))

    initrd = kernel.build_initrd(b"busybox", tmp_path, ["kernel/fs/ext4/ext4.ko.xz"])
    entries = parse_newc(gzip.decompress(initrd))
    assert entries["modules/ext4.ko"][1] == b"ext4 module"
    assert entries["modules/load-order"][1] == b"ext4.ko\n"
    assert entries["init"][0] == 0o100755
    assert entries["bin/busybox"][1] == b"busybox"
