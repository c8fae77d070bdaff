"""What a query answers with: a suggested link (`Related`), or `UnknownArticle` for an id or URL the index does
not hold. Plain records, shared by the index, the outputs, the service and the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence


class UnknownArticle(LookupError):
    """An id or URL that is not in the index; carries the closest ids as suggestions."""

    def __init__(self, ref: str, suggestions: Sequence[str]):
        hint = f"; closest ids: {', '.join(suggestions)}" if suggestions else ""
        super().__init__(f"no article {ref!r} in the index{hint}")
        self.ref = ref
        self.suggestions = list(suggestions)


def closest_ids(ref: str, ids: Sequence[str], n: int = 5) -> list[str]:
    """The ids an unknown `ref` most likely meant: those starting with it (shortest first), then those containing
    it (a partial id: `energy-desk`, `marathon`; a URL is compared by its id form), then similar spellings."""
    import difflib

    needle = ref.strip().strip("/").lower()
    if "://" in needle:
        needle = needle.split("://", 1)[1].removeprefix("www.").strip("/")
    if not needle:
        return []
    starting = sorted((i for i in ids if i.lower().startswith(needle)), key=lambda i: (len(i), i))
    containing = sorted((i for i in ids if needle in i.lower() and not i.lower().startswith(needle)),
                        key=lambda i: (len(i), i))
    found = (starting + containing)[:n]
    if len(found) < n:
        found += [i for i in difflib.get_close_matches(ref, ids, n=n, cutoff=0.5) if i not in found]
    return found[:n]


@dataclass
class Related:
    """One suggested link."""

    id: str
    score: float
    title: str
    url: str | None
    published: str | None
    source: str | None
    kind: str
    pinned: bool = False
    topics: list[str] | None = None
    authors: list[str] | None = None
    page_type: str | None = None
    parts: dict | None = None  # per part: raw value and z-score (hybrid ranking)
    explanation: dict | None = None  # with explain=True: shared terms and best-matching passage

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in ("parts", "explanation"):
            if data[key] is None:
                data.pop(key)
        return data
