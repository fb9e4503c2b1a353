"""Tables that never cut a value short: identifiers wrap instead of ending in "…".

Rich shortens a word that does not fit its column with an ellipsis, and a pipe gives
Rich 80 columns: ``mloop models show churn | grep production`` then lost the alias
names. Every column here folds long values onto the next line instead, and output
that goes to a pipe or file is laid out 240 columns wide, so a row stays on one line
for grep.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table as _RichTable

__all__ = ["Table", "make_console"]

_PIPE_WIDTH = 240


def make_console(**kwargs: Any) -> Console:
    """A console for command output: the terminal's width, or 240 columns for a pipe."""
    if not sys.stdout.isatty():
        kwargs.setdefault("width", _PIPE_WIDTH)
    return Console(**kwargs)


class Table(_RichTable):
    """``rich.table.Table`` whose columns fold long values rather than elide them."""

    def add_column(self, *args: Any, **kwargs: Any) -> None:
        """Add a column (``overflow="fold"`` unless told otherwise)."""
        kwargs.setdefault("overflow", "fold")
        super().add_column(*args, **kwargs)
