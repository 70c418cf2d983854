"""donkey images and donkey rmi."""

from __future__ import annotations

import time

import click


def _age(created: float) -> str:
    seconds = max(0, int(time.time() - created))
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} seconds ago"


def _size(count: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.3g}{unit}" if unit != "B" else f"{count}B"
        count /= 1000
    return f"{count}B"


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("-q", "--quiet", is_flag=True, help="Print names only.")
@click.pass_obj
def images(engine, quiet):
    """List the images in the store, and the built-in ones not built yet."""
    from donkey.image import recipes
    from donkey.image.store import directory_size

    stored = engine.images.list()
    if quiet:
        for image in stored:
            click.echo(image.name)
        return 0

    rows = [("REPOSITORY", "TAG", "CREATED", "SIZE")]
    for image in stored:
        rows.append((image.name, "latest", _age(image.created),
                     _size(directory_size(image.rootfs))))
    built = {image.name for image in stored}
    for name in recipes.names():
        if name not in built:
            rows.append((name, "latest", "built on first use", "-"))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        click.echo("   ".join(cells).rstrip())
    return 0


@click.command(context_settings={"help_option_names": ["--help"]})
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def rmi(engine, names):
    """Remove images from the store (built-in ones are built again on next use)."""
    from donkey.errors import Conflict
    from donkey.image.store import normalize_name

    for name in names:
        wanted = normalize_name(name)
        # Containers read the image as their overlay lower layer: removing it would pull the
        # files out from under running ones and leave stopped ones unable to start.
        users = [state.name for state in engine.states.list() if state.config.image == wanted]
        if users:
            raise Conflict(f"image {name} is used by container(s) {', '.join(sorted(users))}: "
                           "remove them first with donkey rm", value=name, exit_code=1)
        engine.images.remove(name)
        click.echo(f"Deleted: {name}")
    return 0
