"""``manta``: operate Manta clusters from the shell."""

from __future__ import annotations

import click

import manta


@click.group()
@click.version_option(manta.__version__, prog_name="manta")
def cli() -> None:
    """Manta: Ray's programming model, fast to start and secure by default."""
