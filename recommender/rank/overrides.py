"""Editorial overrides, stored with the index: pinned links that always come first and blocked links that never
appear, for one article or for every article ("*").

    from recommender.rank.overrides import Overrides
    with Overrides.open("demo-index") as ov:
        ov.pin("news/a", "news/b")        # news/b is the first link of news/a
        ov.block("*", "blog/old-post")    # blog/old-post never appears as a link
        ov.unpin("news/a", "news/b")      # removes a pin
        ov.unblock("*", "blog/old-post")  # removes a block

They live in `overrides.sqlite` beside the index data, outside the manifest: an editor changes them at any time
without rebuilding, and a rebuild (or the nightly batch) keeps them. Each change is one SQLite transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..common.errors import InputError

FILE = "overrides.sqlite"
EVERY = "*"
MAX_NOTE = 1000  # characters: a note says why, in a line; the CLI and the API print it back

SCHEMA = """
CREATE TABLE IF NOT EXISTS overrides (
    article TEXT NOT NULL,          -- an article id, or '*' for every article
    target TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('pin', 'block')),
    position INTEGER NOT NULL,      -- pins: order among the article's pins
    note TEXT,
    created TEXT NOT NULL,
    PRIMARY KEY (article, target)
);
"""


@dataclass(frozen=True)
class Override:
    article: str
    target: str
    action: str
    position: int
    note: str | None
    created: str

    def to_dict(self) -> dict:
        return {"article": self.article, "target": self.target, "action": self.action,
                "position": self.position, "note": self.note, "created": self.created}


class OverrideSet:
    """The overrides in memory, for ranking: pins and blocks by article."""

    def __init__(self, items: list[Override] = ()):
        self.items = list(items)
        self.pins: dict[str, list[str]] = {}
        self.blocks: dict[str, set[str]] = {}
        for item in sorted(self.items, key=lambda o: (o.position, o.created)):
            if item.action == "pin":
                self.pins.setdefault(item.article, []).append(item.target)
            else:
                self.blocks.setdefault(item.article, set()).add(item.target)

    def __bool__(self) -> bool:
        return bool(self.items)

    def pinned(self, article: str) -> list[str]:
        return self.pins.get(article, []) + [t for t in self.pins.get(EVERY, []) if t not in self.pins.get(article, [])]

    def blocked(self, article: str) -> set[str]:
        return self.blocks.get(article, set()) | self.blocks.get(EVERY, set())


class Overrides:
    """The override store of one index folder."""

    def __init__(self, path: Path):
        self.path = path
        self.conn = sqlite3.connect(path)
        self.conn.executescript(SCHEMA)

    @classmethod
    def open(cls, folder: str | Path) -> "Overrides":
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no index folder")
        return cls(folder / FILE)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Overrides":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def pin(self, article: str, target: str, note: str | None = None) -> Override:
        return self._set(article, target, "pin", note)

    def block(self, article: str, target: str, note: str | None = None) -> Override:
        return self._set(article, target, "block", note)

    def unpin(self, article: str, target: str) -> bool:
        """Remove the pin of `target` on `article`; False if there was none."""
        return self._remove(article, target, "pin")

    def unblock(self, article: str, target: str) -> bool:
        """Remove the block of `target` on `article`; False if there was none."""
        return self._remove(article, target, "block")

    def ids(self) -> set[str]:
        """Every article and target id the store names (some may have left the index since)."""
        return {x for o in self.all() for x in (o.article, o.target)}

    def action_of(self, article: str, target: str) -> str | None:
        """"pin", "block" or None: what the store holds for `target` on `article`."""
        row = self.conn.execute("SELECT action FROM overrides WHERE article = ? AND target = ?",
                                (article, target)).fetchone()
        return row[0] if row else None

    def nothing_removed(self, action: str, article: str, target: str) -> str:
        """Why `unpin`/`unblock` (`action`) of `target` on `article` removed nothing, in one line."""
        done = {"pin": "pinned", "block": "blocked"}
        held, wanted = self.action_of(article, target), action.removeprefix("un")
        if held:
            return f"{target} is {done[held]} on {article}, not {done[wanted]}: un{held} it instead"
        return f"no {wanted} of {target} on {article}"

    def _remove(self, article: str, target: str, action: str) -> bool:
        with self.conn:
            cur = self.conn.execute("DELETE FROM overrides WHERE article = ? AND target = ? AND action = ?",
                                    (article, target, action))
        return cur.rowcount > 0

    def all(self) -> list[Override]:
        rows = self.conn.execute(
            "SELECT article, target, action, position, note, created FROM overrides ORDER BY article, action, position"
        ).fetchall()
        return [Override(*row) for row in rows]

    def load(self) -> OverrideSet:
        return OverrideSet(self.all())

    def _set(self, article: str, target: str, action: str, note: str | None) -> Override:
        from ..common.clock import utc_now

        if article == target:
            raise InputError(f"an article cannot be linked to itself ({article})")
        check_note(note)
        with self.conn:
            row = self.conn.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM overrides WHERE article = ?",
                                    (article,)).fetchone()
            item = Override(article, target, action, int(row[0]), note, utc_now())
            self.conn.execute("INSERT OR REPLACE INTO overrides VALUES (?, ?, ?, ?, ?, ?)",
                              (item.article, item.target, item.action, item.position, item.note, item.created))
        return item


def never_shown(item: Override, index, policy, items: list[Override] = ()) -> str | None:
    """Why the pin `item` can never show among its article's links in `index` under `policy`, or None when it
    can: its target is not in the index, is unpublished while the policy links no drafts, is of a kind the
    policy's [links] targets leave out (a curated stub, no URL), or is blocked on every article (among `items`,
    the store's overrides); or its article is gone. index: an opened index, the Index of the Python API
    (rank.index.Index, whose data it reads) or that data itself (rank.indexdata.IndexData)."""
    if item.action != "pin":
        return None
    index = getattr(index, "data", index)  # the documented API passes an Index
    target = index.store.by_id(item.target)
    if target is None:
        return f"{item.target} is not in the index"
    if target.draft and not policy.links.include_drafts:
        return f"{item.target} is unpublished (a draft), and the policy links no drafts (include_drafts = false)"
    facts = index.rule_columns()
    unlinkable = facts.unlinkable(policy)
    row = facts.row_of[target.id] if target.id in facts.row_of else None
    if unlinkable is not None and row is not None and unlinkable[row]:
        from .policy import TARGETS

        kind = TARGETS[int(facts.target_kinds(policy)[row])]
        return (f"{item.target} is a link target of the kind {kind!r}, which the policy's [links] targets "
                f"({', '.join(policy.links.targets)}) leave out of every list")
    if item.article != EVERY and index.store.by_id(item.article) is None:
        return f"{item.article} is not in the index"
    if item.article != EVERY and any(o.action == "block" and o.article == EVERY and o.target == item.target
                                     for o in items):  # (a block on the same article is replaced by the pin)
        return f"{item.target} is blocked on every article"
    return None


def pin_refusal(store: "Overrides", index, policy, article: str, target: str) -> str | None:
    """Why a new pin of `target` on `article` is refused, in one line (it could never show: never_shown, among
    the store's overrides); None when it may be stored. The CLI's `pin` and the editors' API both ask it."""
    problem = never_shown(Override(article, target, "pin", 0, None, ""), index, policy, store.all())
    return f"not pinned: {problem}, so the pin would never show" if problem else None


def check_note(note: str | None) -> None:
    """InputError unless `note` is one line of at most MAX_NOTE characters (or None)."""
    if note is None:
        return
    if len(note) > MAX_NOTE:
        raise InputError(f"a note is at most {MAX_NOTE} characters, this one has {len(note)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in note):
        raise InputError("a note is one line of text, without control characters")


def load_overrides(folder: str | Path) -> OverrideSet:
    """The overrides of an index folder (empty if none were ever set); never creates the file."""
    path = Path(folder) / FILE
    if not path.exists():
        return OverrideSet()
    store = Overrides(path)
    try:
        return store.load()
    finally:
        store.close()
