"""The image store: one directory per image under <data root>/images.

Each image is `rootfs/` plus `image.json` (name, created, config with Env, Cmd and
WorkingDir, and the hash of the recipe it was built from). Built-in images are assembled
on first use from the recipes under the repository's `images/` directory.
"""

from __future__ import annotations

import os
import time

from donkey import jsontext
from donkey.errors import DonkeyError, InvalidArgument, NotFound
from donkey.logs.engine import get_logger
from donkey.record import Record

log = get_logger("image")

DEFAULT_IMAGE = "busybox"


class Image(Record):
    FIELDS = ("name", "path", "created", "config")

    def __init__(self, name: str, path: str, created: float,
                 config: dict | None = None) -> None:
        self.name = name
        self.path = path
        self.created = created
        self.config = {} if config is None else config

    @property
    def rootfs(self) -> str:
        return os.path.join(self.path, "rootfs")

    @property
    def env(self) -> list[str]:
        return list(self.config.get("Env") or [])

    @property
    def cmd(self) -> list[str]:
        return list(self.config.get("Cmd") or [])

    @property
    def workdir(self) -> str:
        return self.config.get("WorkingDir") or "/"


def normalize_name(reference: str) -> str:
    """Map 'busybox:latest' and 'library/busybox' to the store's name 'busybox'."""
    name = reference
    if name.startswith("library/"):
        name = name[len("library/"):]
    if name.endswith(":latest"):
        name = name[: -len(":latest")]
    return name


def _directory_name(name: str) -> str:
    if not name or name.startswith(".") or "\x00" in name:
        raise InvalidArgument(f"invalid image name {name!r}", value=name)
    return name.replace("/", "%").replace(":", "@")


class ImageStore:
    def __init__(self, data_root: str) -> None:
        self.root = os.path.join(data_root, "images")

    def path_of(self, name: str) -> str:
        return os.path.join(self.root, _directory_name(normalize_name(name)))

    def find(self, reference: str) -> Image | None:
        name = normalize_name(reference)
        path = self.path_of(name)
        try:
            with open(os.path.join(path, "image.json"), "rb") as stream:
                meta = jsontext.loads(stream.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise DonkeyError(
                f"image {name} is damaged ({error}): remove it with donkey rmi {name}",
                path=path,
            ) from None
        return Image(name=meta["name"], path=path, created=meta["created"],
                     config=meta.get("config", {}))

    def get(self, reference: str) -> Image:
        """Return the image, building a built-in one on first use."""
        image = self.find(reference)
        if image is not None:
            return image

        from donkey.image import recipes

        name = normalize_name(reference)
        recipe = recipes.find(name)
        if recipe is None:
            raise NotFound(
                f"image {reference} not found: run donkey images to list images, "
                f"or pick a built-in one ({', '.join(recipes.names()) or 'none'})",
                value=reference,
            )
        return self.build(recipe)

    def has(self, reference: str) -> bool:
        name = normalize_name(reference)
        if self.find(name) is not None:
            return True
        # Imported only here: a stored image, the usual case, needs no recipe.
        from donkey.image import recipes

        return recipes.find(name) is not None

    def build(self, recipe) -> Image:
        """Build recipe into a temporary directory, then rename it into place.

        The rename makes a half-built image invisible, and two donkey processes building
        the same image at once both end with one complete copy.
        """
        # Imported here: shutil loads bz2, lzma and zlib, and only a build needs it.
        import shutil

        from donkey.image import builder

        if recipe.base:
            self.get(recipe.base)

        os.makedirs(self.root, mode=0o700, exist_ok=True)
        final = self.path_of(recipe.name)
        staging = f"{final}.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(os.path.join(staging, "rootfs"))
        log.info("building image %s from %s", recipe.name, recipe.path)
        try:
            base_rootfs = self.path_of(recipe.base) + "/rootfs" if recipe.base else None
            builder.build_rootfs(recipe, os.path.join(staging, "rootfs"), base_rootfs)
            meta = {
                "name": recipe.name,
                "created": time.time(),
                "config": recipe.config,
                "recipe_hash": recipe.digest,
            }
            import json

            with open(os.path.join(staging, "image.json"), "w", encoding="utf-8") as stream:
                json.dump(meta, stream, indent=2)
            try:
                os.rename(staging, final)
            except OSError:
                # Another process finished the same image first; keep its copy.
                log.debug("image %s appeared while building; keeping the other copy",
                          recipe.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

        image = self.find(recipe.name)
        assert image is not None
        return image

    def list(self) -> list[Image]:
        try:
            entries = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        images = []
        for entry in entries:
            if ".tmp-" in entry:
                continue
            image = self.find(entry.replace("%", "/").replace("@", ":"))
            if image is not None:
                images.append(image)
        return images

    def remove(self, reference: str) -> None:
        image = self.find(reference)
        if image is None:
            raise NotFound(f"image {reference} not found: run donkey images to list images",
                           value=reference)
        import shutil

        shutil.rmtree(image.path)


def directory_size(path: str) -> int:
    """Add up file sizes under path, counting a hard-linked file once (busybox has hundreds)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            total += info.st_size
    return total
