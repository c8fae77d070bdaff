"""Text renderings of results for the terminal: plain aligned tables and JSON.

Tables cut long cells to fit a terminal; `wide=True` (the CLI's `--wide`, and any output that is not a
terminal: a pipe or a file) keeps every cell whole."""

from __future__ import annotations

import json
import shutil
from typing import Sequence


def _cut(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 article', '2 articles', '0 articles' (`many` for an irregular plural: plural(n, 'query', 'queries'))."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def table(rows: Sequence[Sequence[object]], headers: Sequence[str], widths: Sequence[int] | None = None,
          wide: bool = False) -> str:
    """A plain aligned text table; `widths` caps columns (0 = no cap), unless `wide`."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    caps = list(widths) if widths and not wide else [0] * len(headers)
    cells = [[_cut(c, caps[i]) if caps[i] else c for i, c in enumerate(row)] for row in cells]
    sizes = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(sizes[i]) for i, c in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * s for s in sizes))
    return "\n".join(lines)


def render_related(query: dict, results: Sequence, as_json: bool, wide: bool = False,
                   answered_by: str | None = None) -> str:
    """answered_by (JSON only): which path answered, "stored-list" or "computed" (see Index.related_answer)."""
    if as_json:
        extra = {"answered_by": answered_by} if answered_by else {}
        return json.dumps({"query": query, **extra, "related": [r.to_dict() for r in results]}, ensure_ascii=False)
    term = shutil.get_terminal_size((140, 20)).columns
    title_width = max(30, min(70, term - 75))
    head = query.get("title") or query.get("text") or ""
    label = f"{query.get('id')}: {head}" if query.get("id") else head
    rows = [
        (rank, "pinned" if r.pinned and r.score is None else f"{r.score:.3f}" + ("*" if r.pinned else ""),
         r.title, r.source or "", (r.published or "")[:10], r.url or r.id)
        for rank, r in enumerate(results, start=1)
    ]
    body = table(rows, ["#", "score", "title", "source", "date", "url or id"], [0, 0, title_width, 18, 0, 60], wide)
    if any(r.pinned for r in results):
        body += "\n* pinned by an editor"
    explained = [render_explanation(rank, r) for rank, r in enumerate(results, start=1) if r.explanation or r.parts]
    if explained and any(r.explanation for r in results):
        ranking = next((r.explanation["ranking"] for r in results if (r.explanation or {}).get("ranking")), None)
        body += f"\n\nwhy{f' (ranking: {ranking})' if ranking else ''}:\n" + "\n".join(explained)
    label = label if wide else _cut(label, 120)
    return f"related to {label}\n{body}" if results else f"related to {label}\n(no results)"


def score_lines(r) -> list[str]:
    """The score as the ranking computes it, the weighted mean of the parts' z-scores (the weighted sum divided by
    the sum of the weights), so that the printed arithmetic gives the score shown; then each part's raw value."""
    parts = {k: v for k, v in r.parts.items() if k != "learned"}
    norm = sum(p["weight"] for p in parts.values())
    mean = sum(p["weight"] * p["z"] for p in parts.values()) / norm if norm else 0.0
    terms = " + ".join(f"{p['weight']:g} x {name} z {p['z']:.3f}" for name, p in parts.items())
    learned = "learned" in r.parts
    lines = [f"   {'default score' if learned else 'score'} = ({terms}) / {norm:g} = {mean:.3f}"]
    if not learned and r.score is not None and abs(mean - r.score) > 0.001:
        lines.append(f"   then the policy's topic bonus and recency: {r.score:.3f}")
    lines.append("   values: " + ", ".join(f"{name} {p['value']:.3f}" for name, p in parts.items()))
    return lines


def render_explanation(rank: int, r) -> str:
    """One link's explanation: score parts (raw value, z-score, weight), shared terms, mentions, passage."""
    lines = [f"{rank}. {_cut(r.title, 90)}"]
    if r.parts:
        lines += score_lines(r)
        if "learned" in r.parts:
            shown = [(k, v) for k, v in r.parts["learned"].items() if abs(v) >= 0.005]
            lines.append("   learned score parts: " + ", ".join(f"{k} {v:+.2f}" for k, v in shown))
    e = r.explanation or {}
    if e.get("pinned"):
        lines.append("   " + e["pinned"])
    if e.get("shared_terms"):
        lines.append("   shared terms: " + ", ".join(e["shared_terms"]))
    if e.get("mentions"):
        lines.append("   " + "; ".join(e["mentions"]))
    if e.get("passage"):
        lines.append(f"   best passage ({e['passage_score']:.3f}): {_cut(e['passage'], 200)}")
    return "\n".join(lines)


def render_info(info: dict, as_json: bool) -> str:
    """The index's facts; `info["verified"]` (after `info --verify`) says which check passed."""
    if as_json:
        return json.dumps(info, ensure_ascii=False)
    shown = dict(info)
    for key in ("size_bytes", "cache_bytes"):
        shown[key] = f"{info[key] / 1e6:.1f} MB"
    verified = shown.pop("verified", None)
    for key, value in shown.items():  # a count per field: `url 7, published 5`, not a Python dict
        if isinstance(value, dict):
            shown[key] = ", ".join(f"{name} {count}" for name, count in value.items()) or "-"
    width = max(len(k) for k in shown)
    lines = [f"{k.ljust(width)}  {v}" for k, v in shown.items()]
    if verified:
        lines.append(f"verify: passed, {plural(verified['files'], 'file')} ({verified['bytes'] / 1e6:.1f} MB) "
                     "match their sha256 in the manifest")
    return "\n".join(lines)


def render_articles(articles: Sequence, as_json: bool, wide: bool = False) -> str:
    """`recommender list`: the indexed articles (ArticleInfo) as a table, or JSON lines."""
    if as_json:
        return "\n".join(json.dumps({"id": a.id, "title": a.title, "url": a.url, "published": a.published,
                                     "source": a.source, "kind": a.kind}, ensure_ascii=False) for a in articles)
    if not articles:
        return "(no articles)"
    rows = [(a.id, a.title, (a.published or "")[:10], a.url or "") for a in articles]
    return table(rows, ["id", "title", "date", "url"], [50, 60, 0, 70], wide)
