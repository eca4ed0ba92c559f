"""JSON-lines training logs: one JSON object per line, appended as training goes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["JsonLinesLog", "read_log"]


class JsonLinesLog:
    """Appends records to ``path`` (``None``: a log that drops everything, e.g. on ranks > 0).

    Every record carries a ``step``; :meth:`truncate_after` drops the records of steps a resumed
    run is about to redo, so the log of a resumed run equals that of an uninterrupted one.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")

    def truncate_after(self, step: int) -> None:
        """Keep only the records with ``step <= step``."""
        if self.path is not None and self.path.is_file():
            kept = [r for r in read_log(self.path) if r["step"] <= step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """All records of a JSON-lines log, in order."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
