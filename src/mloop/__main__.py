"""``python -m mloop`` runs the CLI."""

from mloop.cli import run

run()
