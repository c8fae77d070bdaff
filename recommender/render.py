"""Text renderings of results for the terminal: plain aligned tables and JSON."""

from __future__ import annotations

import json
import shutil
from typing import Sequence


def _cut(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def table(rows: Sequence[Sequence[object]], headers: Sequence[str], widths: Sequence[int] | None = None) -> str:
    """A plain aligned text table; `widths` caps columns (0 = no cap)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    caps = list(widths) if widths else [0] * len(headers)
    cells = [[_cut(c, caps[i]) if caps[i] else c for i, c in enumerate(row)] for row in cells]
    sizes = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(sizes[i]) for i, c in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * s for s in sizes))
    return "\n".join(lines)


def render_related(query: dict, results: Sequence, as_json: bool) -> str:
    if as_json:
        return json.dumps({"query": query, "related": [r.to_dict() for r in results]}, ensure_ascii=False)
    term = shutil.get_terminal_size((140, 20)).columns
    title_width = max(30, min(70, term - 75))
    head = query.get("title") or query.get("text") or ""
    label = f"{query.get('id')}: {head}" if query.get("id") else head
    rows = [
        (rank, "pinned" if r.pinned and r.score is None else f"{r.score:.3f}" + ("*" if r.pinned else ""),
         r.title, r.source or "", (r.published or "")[:10], r.url or r.id)
        for rank, r in enumerate(results, start=1)
    ]
    body = table(rows, ["#", "score", "title", "source", "date", "url or id"], [0, 0, title_width, 18, 0, 60])
    if any(r.pinned for r in results):
        body += "\n* pinned by an editor"
    explained = [render_explanation(rank, r) for rank, r in enumerate(results, start=1) if r.explanation or r.parts]
    if explained and any(r.explanation for r in results):
        body += "\n\nwhy:\n" + "\n".join(explained)
    return f"related to {_cut(label, 120)}\n{body}" if results else f"related to {_cut(label, 120)}\n(no results)"


def render_explanation(rank: int, r) -> str:
    """One link's explanation: score parts (raw value, z-score, weight), shared terms, mentions, passage."""
    lines = [f"{rank}. {_cut(r.title, 90)}"]
    if r.parts:
        parts = {k: v for k, v in r.parts.items() if k != "learned"}
        lines.append(("   default score = " if "learned" in r.parts else "   score = ") + " + ".join(
            f"{p['weight']:g} x {name} z {p['z']:.2f} (value {p['value']:.3f})" for name, p in parts.items()))
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
    if as_json:
        return json.dumps(info, ensure_ascii=False)
    shown = dict(info)
    for key in ("size_bytes", "cache_bytes"):
        shown[key] = f"{info[key] / 1e6:.1f} MB"
    width = max(len(k) for k in shown)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in shown.items())


def render_run(record: dict) -> str:
    """A batch run record as a short human summary."""
    seconds = record.get("seconds", {})
    lines = [
        f"batch {record.get('status')}: {record.get('articles', 0)} articles, {record.get('links', 0)} links "
        f"written to {record.get('out')}",
        "articles: " + ", ".join(f"{key} {record.get(key, 0)}" for key in
                                 ("added", "changed", "unchanged", "removed", "skipped")),
        f"embedded {record.get('embedded', 0)}, reused {record.get('reused', 0)} from cache; index "
        + ("rewritten" if record.get("index_rewritten") else "unchanged, kept"),
        *(["related links: nothing that decides them changed since the last run; outputs kept as they are"]
          if record.get("outputs_reused") else []),
        "seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in seconds.items()) + f" (total {sum(seconds.values()):.2f})",
    ]
    training = record.get("training") or {}
    if training.get("trained"):
        cv = training["cv"]
        lines.append(f"learned ranking trained ({training['reason']}): {cv['folds']}-fold cross-validated recall@10 "
                     f"{cv['learned']['recall@10']:.3f} against the default's {cv['default']['recall@10']:.3f}; "
                     + ("in use" if training.get("used") else "not used"))
    elif training.get("reason"):
        lines.append(f"learned ranking not trained: {training['reason']}")
    evaluation = record.get("evaluation")
    if evaluation:
        lines.append(f"against {evaluation['gold']} ({evaluation['queries']} queries):")
        for system in ("system", "tfidf"):
            if system in evaluation:
                figures = evaluation[system]
                lines.append(f"  {system:7} " + "  ".join(f"{k} {v:.3f}" for k, v in figures.items()))
    return "\n".join(lines)
