"""The ``mloop`` command line: parse, call the public API, format."""

from mloop.cli._main import app, main, run

__all__ = ["app", "main", "run"]
