"""Evaluation output: the stdout table, JSON, and a report folder (Markdown, recall@k plot, per-query files).

The columns follow the k the evaluation was run for (`evaluate -k`): the table and report.md show recall at every
k asked, then precision, hit, nDCG and coverage at the main k (10 when asked, else the largest asked), MRR and
MAP; the JSON holds every metric at every k asked.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..common.atomic import atomic_path, atomic_write_text
from .evaluation import CURVE_DEPTH, Evaluation
from ..common.render import table



def main_k(evaluation: Evaluation) -> int:
    """The k the single-k columns and the per-query files use: 10 when it was asked, else the largest asked."""
    return 10 if 10 in evaluation.ks else max(evaluation.ks)


def table_keys(evaluation: Evaluation) -> list[str]:
    k = main_k(evaluation)
    return ([f"recall@{x}" for x in sorted(evaluation.ks)]
            + [f"precision@{k}", f"hit@{k}", "mrr", "map", f"ndcg@{k}", f"coverage@{k}"])


def evaluation_json(evaluation: Evaluation) -> list[dict]:
    """One object per system with every overall metric, plus run facts and notes (e.g. too few queries)."""
    return [
        {"system": s.system, **{k: round(v, 6) if isinstance(v, float) else v for k, v in s.overall.items()},
         "seconds": round(s.seconds, 2), "gold": evaluation.gold_source, "corpus_size": evaluation.corpus_size,
         "notes": list(evaluation.notes)}
        for s in evaluation.systems
    ]


def evaluation_table(evaluation: Evaluation) -> str:
    keys = table_keys(evaluation)
    rows = []
    for s in evaluation.systems:
        rows.append([s.system] + [_fmt(s.overall.get(k)) for k in keys] + [f"{s.seconds:.1f}"])
    head = (f"{evaluation.queries} queries with gold ({evaluation.gold_source}), corpus of {evaluation.corpus_size}"
            + (f", sample of {evaluation.sample} (seed {evaluation.seed})" if evaluation.sample else "")
            + f", {evaluation.seconds:.1f} s")
    notes = "".join(f"\nnote: {n}" for n in evaluation.notes)
    return head + "\n" + table(rows, ["system", *keys, "seconds"]) + notes


def _fmt(value) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() and value > 1 else f"{value:.3f}"


def write_report(evaluation: Evaluation, folder: str | Path, titles: dict[str, str] | None = None) -> Path:
    """Write report.md, recall_at_k.png, per_query.jsonl and per_query.md into folder; returns report.md."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    titles = titles or {}
    plot = _plot_curves(evaluation, folder / "recall_at_k.png")
    main = evaluation.systems[0]
    lines = [
        "# Evaluation report", "",
        f"- gold: {evaluation.gold_source}; queries: {evaluation.queries}; corpus: {evaluation.corpus_size} articles",
        f"- gold links dropped because their target is not in the index: {evaluation.dropped_links}",
    ]
    if evaluation.sample:
        lines.append(f"- random sample of {evaluation.sample} queries, seed {evaluation.seed}")
    lines += [f"- wall time: {evaluation.seconds:.1f} s", *[f"- note: {n}" for n in evaluation.notes], "",
              "## Overall", "", _markdown_table(evaluation), ""]
    if plot:
        lines += ["## Recall@k", "", f"![recall@k curves]({plot.name})", ""]
    k = main_k(evaluation)
    lines += ["## Files", "", f"- `per_query.jsonl`: for each query, each system's gold ranks and top {k} "
              "suggestions not in the gold (with their scores)",
              f"- `per_query.md`: the same for `{main.system}`, readable", ""]
    atomic_write_text(folder / "report.md", "\n".join(lines))
    with atomic_path(folder / "per_query.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as fh:
        by_system = {s.system: {o.query: o for o in s.per_query} for s in evaluation.systems}
        for outcome in main.per_query:
            record = {"query": outcome.query, "systems": {}}
            for name, outcomes in by_system.items():
                o = outcomes.get(outcome.query)
                if o is None:  # not ranked by that system (as published: no date, or no gold left)
                    continue
                record["systems"][name] = {
                    "gold_ranks": o.gold_ranks,
                    "top_not_in_gold": [[i, None if s is None else round(s, 4)] for i, s in o.top[:k]
                                        if i not in o.gold_ranks],
                }
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    atomic_write_text(folder / "per_query.md", _per_query_markdown(main, titles, k))
    return folder / "report.md"


def _markdown_table(evaluation: Evaluation) -> str:
    keys = table_keys(evaluation)
    out = ["| system | " + " | ".join(keys) + " | seconds |", "|---" * (len(keys) + 2) + "|"]
    for s in evaluation.systems:
        out.append(f"| {s.system} | " + " | ".join(_fmt(s.overall.get(k)) for k in keys) + f" | {s.seconds:.1f} |")
    return "\n".join(out)


def _per_query_markdown(result, titles: dict[str, str], k: int = 10) -> str:
    def name(i: str) -> str:
        return f"{titles.get(i, i)} (`{i}`)" if titles.get(i) and titles.get(i) != i else f"`{i}`"

    lines = [f"# Per-query results: {result.system}", ""]
    for o in sorted(result.per_query, key=lambda o: min(o.gold_ranks.values())):
        lines.append(f"## {name(o.query)}")
        lines.append("")
        for gold_id, rank in sorted(o.gold_ranks.items(), key=lambda kv: kv[1]):
            mark = "found" if rank <= k else "missed"
            lines.append(f"- gold, rank {rank} ({mark}): {name(gold_id)}")
        extra = [(i, s) for i, s in o.top[:k] if i not in o.gold_ranks]
        if extra:
            lines.append(f"- top {k} suggestions not in the gold (score): " + "; ".join(
                f"{name(i)} {'pinned' if s is None else format(s, '.3f')}" for i, s in extra[:5]))
        lines.append("")
    return "\n".join(lines)


def _plot_curves(evaluation: Evaluation, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ks = list(range(1, CURVE_DEPTH + 1))
    k = main_k(evaluation)
    for s in evaluation.systems:
        ax.plot(ks, s.recall_curve, label=f"{s.system} (R@{k} {s.overall.get(f'recall@{k}', 0):.3f})")
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k")
    ax.set_title(f"Recall@k, {evaluation.queries} queries ({evaluation.gold_source})")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
