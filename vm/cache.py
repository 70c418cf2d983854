"""The asset cache: where guest images live and how a recipe change invalidates them."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
GUEST_DIR = PACKAGE_DIR / "guest"


def cache_root() -> Path:
    """Return the cache directory: $DONKEY_VM_CACHE, else /var/cache/donkey-vm as root, else
    $XDG_CACHE_HOME/donkey-vm (~/.cache/donkey-vm)."""
    configured = os.environ.get("DONKEY_VM_CACHE")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/cache/donkey-vm")
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "donkey-vm"


def recipe_hash(files: list[Path], *extra: str) -> str:
    """Hash the recipe files' names and contents plus extra strings into a 12-digit key.

    Any edit to a file that shapes an asset changes the key, so the asset is rebuilt instead
    of silently reused.
    """
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    for item in extra:
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()[:12]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` so two runs never build the same asset at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
