"""Recipes for the images donkey builds offline, read from the repository's images/ folder."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

from donkey.errors import DonkeyError

# images/ sits next to the donkey package in a checkout (pip install -e .);
# DONKEY_IMAGES_DIR points elsewhere.
_DEFAULT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "images")


@dataclass
class Recipe:
    name: str
    path: str
    digest: str
    base: str | None = None
    busybox: list[str] = field(default_factory=list)
    host_binaries: list[str] = field(default_factory=list)
    directories: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    requires: dict[str, str] = field(default_factory=dict)


def recipes_dir() -> str:
    return os.environ.get("DONKEY_IMAGES_DIR") or _DEFAULT_DIR


def names() -> list[str]:
    try:
        entries = sorted(os.listdir(recipes_dir()))
    except FileNotFoundError:
        return []
    return [entry for entry in entries
            if os.path.isfile(os.path.join(recipes_dir(), entry, "recipe.json"))]


def find(name: str) -> Recipe | None:
    if "/" in name or name.startswith("."):
        return None
    path = os.path.join(recipes_dir(), name, "recipe.json")
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise DonkeyError(f"invalid image recipe {path}: {error}", path=path) from None

    return Recipe(
        name=data.get("name", name),
        path=path,
        digest=hashlib.sha256(raw).hexdigest(),
        base=data.get("base"),
        busybox=data.get("busybox", []),
        host_binaries=data.get("host_binaries", []),
        directories=data.get("directories", {}),
        files=data.get("files", {}),
        config=data.get("config", {}),
        requires=data.get("requires", {}),
    )
