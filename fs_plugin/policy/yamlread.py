"""PyYAML's safe loader with a bound on nesting.

PyYAML composes nested collections recursively: a file of a few thousand ``[`` (a
truncated or hostile upload) exhausts Python's recursion limit, and the editor gets a
``RecursionError`` with no file or line instead of an error to fix. No policy file nests
deeper than a dozen levels; past :data:`MAX_DEPTH` composing stops with an ordinary
``MarkedYAMLError`` that points at the node.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError

__all__ = ["MAX_DEPTH", "BoundedSafeLoader", "reader_line", "reader_problem"]

MAX_DEPTH = 64


class BoundedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` refusing collections nested deeper than :data:`MAX_DEPTH`."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def reader_line(text: str, exc: yaml.reader.ReaderError) -> int:
    """The 1-based line of a character the YAML reader refused (it reports an offset)."""
    return text.count("\n", 0, exc.position) + 1


def reader_problem(exc: yaml.reader.ReaderError) -> str:
    """``special characters are not allowed (character #x0001)``."""
    character = exc.character if isinstance(exc.character, int) else ord(exc.character)
    return f"{exc.reason} (character #x{character:04x})"
