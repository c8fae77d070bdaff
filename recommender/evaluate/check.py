"""The editors' check: for every article with a hand-curated related list, which curated links the system
agrees with, which it ranks low or does not show (possibly stale or weak links), and its best suggestions missing
from the list.

The ranking is the one `recommender related` shows (Index.link_list: the hybrid score, re-scored by the learned
ranking when the policy uses it, the policy's rules, duplicates and minimum score, the editors' pins and blocks),
so a curated link at rank n here is the n-th link `related` prints for the article, and scores are on its scale.
A suggestion is always a link `related` would show: never the article itself, nor one the policy excludes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .metrics import gold_in_index
from ..rank.policy import Policy
from ..common.progress import progress_bar
from ..rank.ranking import QUERY_BLOCK

BEYOND_K = "beyond k"
BELOW_MINIMUM = "below the minimum score"
BELOW_REVERSE = "unlike the articles it would link to (below the minimum reverse score)"
BLOCKED = "blocked by an editor"
EXCLUDED = "excluded by the policy (a rule or a near-duplicate)"
NOT_CANDIDATE = "not among the candidates"


@dataclass
class CheckLink:
    id: str
    rank: int | None  # position in the article's related list (1 = the first link shown); None: not in it
    score: float | None  # on `related`'s scale; None for a pin the ranking did not reach or a link not scored
    pinned: bool = False
    reason: str | None = None  # why a curated link is not in the top k (BEYOND_K, BELOW_MINIMUM, ...)

    def to_dict(self) -> dict:
        return {"id": self.id, "rank": self.rank, "score": self.score, "pinned": self.pinned, "reason": self.reason}


@dataclass
class CheckItem:
    id: str
    title: str
    agreed: list[CheckLink]  # curated links among the k links shown
    low: list[CheckLink]  # curated links ranked below k, or not shown at all (reason says why)
    missing: list[CheckLink]  # links shown in the top k that are not in the curated list
    k: int = 10  # the links shown

    @property
    def agreement(self) -> float:
        total = len(self.agreed) + len(self.low)
        return len(self.agreed) / total if total else 0.0


def _score(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def editors_check(index, k: int | None = None, suggestions: int = 5, *, policy: Policy | None = None,
                  overrides: bool = True, ids=None, progress: bool = False) -> list[CheckItem]:
    """Compare what `related` shows (k links under the policy, default its k) with the curated `related:` lists
    of the articles that have them (only those in `ids` when given); weakest agreement first."""
    policy = policy or Policy()
    policy = policy.with_links(k=k) if k is not None else policy
    k = policy.links.k
    ids_in_rows = index.data.store.ids()
    row_of = {i: r for r, i in enumerate(ids_in_rows)}
    curated, _ = gold_in_index(index.data.store.curated(), row_of)
    if ids is not None:
        wanted = set(ids)
        curated = {a: links for a, links in curated.items() if a in wanted}
    if not curated:
        return []
    edits = index.data.overrides() if overrides else None
    ranker = index.ranker(policy)
    unfiltered = replace(policy, links=replace(policy.links, min_score=None, min_reverse=None))
    titles = {info.id: info.title for info in index.data.store.all()}
    rows = sorted(row_of[a] for a in curated)
    items = []
    with progress_bar(len(rows), desc="editors' check", unit="article", enabled=progress) as bar:
        for start in range(0, len(rows), QUERY_BLOCK):
            block = rows[start:start + QUERY_BLOCK]
            for cand in ranker.score_rows(block):
                query = ids_in_rows[cand.query]
                shown = index.link_list(cand, policy, edits, every=True)
                items.append(_item(index, query, titles.get(query, query), curated[query], shown, cand, k,
                                   suggestions, edits, unfiltered, row_of, ids_in_rows, policy.links.min_score))
            bar.update(len(block))
    items.sort(key=lambda item: (item.agreement, item.id))
    return items


def _item(index, query, title, curated, shown, cand, k, suggestions, edits, unfiltered, row_of, ids,
          minimum: float | None = None) -> CheckItem:
    """One article's check; `shown` is every link `related` would show for it, in order."""
    position = {link.row: (n, link) for n, link in enumerate(shown, start=1)}
    agreed, low = [], []
    without_minimum = None
    cand_rows = set(cand.rows.tolist())
    for gid in curated:
        row = row_of[gid]
        if row in position:
            rank, link = position[row]
            entry = CheckLink(gid, rank, _score(link.score), link.pinned, None if rank <= k else BEYOND_K)
            (agreed if rank <= k else low).append(entry)
            continue
        if edits is not None and gid in edits.blocked(query):
            low.append(CheckLink(gid, None, None, reason=BLOCKED))
            continue
        if row not in cand_rows:
            low.append(CheckLink(gid, None, None, reason=NOT_CANDIDATE))
            continue
        if without_minimum is None:
            without_minimum = {link.row: link for link in index.link_list(cand, unfiltered, edits, every=True)}
        link = without_minimum.get(row)
        if link is not None:
            weak = minimum is not None and link.score < minimum
            low.append(CheckLink(gid, None, _score(link.score), reason=BELOW_MINIMUM if weak else BELOW_REVERSE))
        else:
            low.append(CheckLink(gid, None, None, reason=EXCLUDED))
    agreed.sort(key=lambda e: e.rank)
    low.sort(key=lambda e: (e.rank is None, e.rank or 0))
    curated_rows = {row_of[g] for g in curated}
    missing = [CheckLink(ids[link.row], n, _score(link.score), link.pinned)
               for n, link in enumerate(shown[:k], start=1) if link.row not in curated_rows][:suggestions]
    return CheckItem(id=query, title=title, agreed=agreed, low=low, missing=missing, k=k)


def check_markdown(items: list[CheckItem], titles: dict[str, str], k: int | None = None) -> str:
    """A readable Monday-morning report, weakest agreement first (k: the items' own by default)."""
    k = k if k is not None else (items[0].k if items else 10)

    def link(i: str) -> str:
        return f"{titles.get(i) or i} (`{i}`)"

    def score(entry: CheckLink) -> str:
        return "" if entry.score is None else f", score {entry.score:.3f}"

    agreed = sum(len(i.agreed) for i in items)
    total = agreed + sum(len(i.low) for i in items)
    lines = [
        "# Editors' check: curated related links vs. the recommender", "",
        f"{len(items)} articles have curated lists; the recommender shows {agreed} of their {total} curated links "
        f"in its top {k} (ranked as `recommender related` ranks them: the same policy, scores and overrides). "
        "Articles are listed with the weakest agreement first.", "",
    ]
    for item in items:
        lines.append(f"## {item.title}")
        lines.append(f"`{item.id}`: {len(item.agreed)} of {len(item.agreed) + len(item.low)} curated links agreed")
        lines.append("")
        for entry in item.agreed:
            pin = ", pinned" if entry.pinned else ""
            lines.append(f"- ✅ agreed (rank {entry.rank}{score(entry)}{pin}): {link(entry.id)}")
        for entry in item.low:
            if entry.rank is not None:
                lines.append(f"- ⚠️ ranked low (rank {entry.rank}{score(entry)}), possibly stale or weak: "
                             f"{link(entry.id)}")
            else:
                lines.append(f"- ⚠️ not linked ({entry.reason}{score(entry)}): {link(entry.id)}")
        for entry in item.missing:
            pin = ", pinned" if entry.pinned else ""
            lines.append(f"- ➕ suggested, not curated (rank {entry.rank}{score(entry)}{pin}): {link(entry.id)}")
        lines.append("")
    return "\n".join(lines)
