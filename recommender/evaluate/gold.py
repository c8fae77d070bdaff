"""Gold related lists: from a gold.jsonl file (``{"id", "related": [ids]}`` a line) or the curated lists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from ..common.errors import InputError


class GoldError(InputError):
    """A gold file that cannot be read; the message names the file and line."""


def load_gold_jsonl(path: str | Path) -> dict[str, list[str]]:
    """Query id -> related ids, self-links dropped, duplicates removed (order kept)."""
    path = Path(path)
    gold: dict[str, list[str]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise GoldError(f"{path}: cannot read gold file ({exc})") from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            query = str(record["id"])
            related = record["related"]
            if not isinstance(related, list):
                raise TypeError("related is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise GoldError(f"{path}:{lineno}: not a gold line ({exc})") from None
        items = gold.setdefault(query, [])
        for rid in map(str, related):
            if rid != query and rid not in items:
                items.append(rid)
    return gold


def gold_from_curated(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """The same shape from (article id, related id) pairs."""
    gold: dict[str, list[str]] = {}
    for query, rid in pairs:
        items = gold.setdefault(query, [])
        if rid != query and rid not in items:
            items.append(rid)
    return gold
