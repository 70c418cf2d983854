"""Commands on existing containers."""

from __future__ import annotations

import sys

import click

from donkey.errors import DonkeyError


@click.command(context_settings={"help_option_names": ["--help"]})
@click.option("-f", "--force", is_flag=True, help="Kill the container first if it runs.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def rm(engine, force, containers):
    """Remove containers, with their layer, cgroup and state."""
    failed = False
    for reference in containers:
        try:
            state = engine.states.lookup(reference)
            engine.remove(state, force=force)
        except DonkeyError as error:
            sys.stderr.write(f"donkey: {error}\n")
            failed = True
            continue
        click.echo(reference)
    return 1 if failed else 0
