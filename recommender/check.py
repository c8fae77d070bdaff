"""The editors' check: for every article with a hand-curated related list, which curated links the system
agrees with, which it ranks low (possibly stale or weak links), and its best suggestions missing from the list.
"""

from __future__ import annotations

from dataclasses import dataclass

from .evaluate import DenseScorer, gold_in_index, rank_system


@dataclass
class CheckItem:
    id: str
    title: str
    agreed: list[tuple[str, int]]  # curated links the system has in its top k: (id, rank)
    low: list[tuple[str, int]]  # curated links ranked below k: (id, rank)
    missing: list[tuple[str, float]]  # the system's top suggestions absent from the curated list: (id, score)

    @property
    def agreement(self) -> float:
        total = len(self.agreed) + len(self.low)
        return len(self.agreed) / total if total else 0.0


def editors_check(index, k: int = 10, suggestions: int = 5, progress: bool = False) -> list[CheckItem]:
    """Compare the index's rankings with its curated `related:` lists (the articles that have them)."""
    ids = index.store.ids()
    row_of = {i: r for r, i in enumerate(ids)}
    curated, _ = gold_in_index(index.store.curated(), row_of)
    if not curated:
        return []
    queries = sorted(row_of[a] for a in curated)
    gold = {row_of[a]: [row_of[r] for r in rel] for a, rel in curated.items()}
    result = rank_system(DenseScorer(index.vectors.vectors()), queries, gold, ids, progress=progress)
    titles = {info.id: info.title for info in index.store.all()}
    items = []
    for outcome in result.per_query:
        ranked = sorted(outcome.gold_ranks.items(), key=lambda kv: kv[1])
        items.append(CheckItem(
            id=outcome.query,
            title=titles.get(outcome.query, outcome.query),
            agreed=[(g, r) for g, r in ranked if r <= k],
            low=[(g, r) for g, r in ranked if r > k],
            missing=[(i, s) for i, s in outcome.top[:k] if i not in outcome.gold_ranks][:suggestions],
        ))
    items.sort(key=lambda item: (item.agreement, item.id))
    return items


def check_markdown(items: list[CheckItem], titles: dict[str, str], k: int) -> str:
    """A readable Monday-morning report, weakest agreement first."""

    def link(i: str) -> str:
        return f"{titles.get(i) or i} (`{i}`)"

    agreed = sum(len(i.agreed) for i in items)
    total = agreed + sum(len(i.low) for i in items)
    lines = [
        "# Editors' check: curated related links vs. the recommender", "",
        f"{len(items)} articles have curated lists; the recommender has {agreed} of their {total} curated links "
        f"in its top {k}. Articles are listed with the weakest agreement first.", "",
    ]
    for item in items:
        lines.append(f"## {item.title}")
        lines.append(f"`{item.id}`: {len(item.agreed)} of {len(item.agreed) + len(item.low)} curated links agreed")
        lines.append("")
        for gid, rank in item.agreed:
            lines.append(f"- ✅ agreed (rank {rank}): {link(gid)}")
        for gid, rank in item.low:
            lines.append(f"- ⚠️ ranked low (rank {rank}), possibly stale or weak: {link(gid)}")
        for sid, score in item.missing:
            lines.append(f"- ➕ suggested, not curated (score {score:.3f}): {link(sid)}")
        lines.append("")
    return "\n".join(lines)
