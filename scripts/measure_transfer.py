"""Leave-one-corpus-out measurement of the transferable default ranking (recommender.rank.default_model), and
the fit of the model the package ships.

    python scripts/measure_transfer.py --corpus NAME=INDEX=GOLD [--corpus ...] [--cache DIR]
        [--objective listwise|pointwise ...] [--normalise centre|standardise ...] [--drop SIGNAL ...]
        [--write recommender/rank/default_model.json]

For each corpus X: a model fitted on the other corpora's curated lists (each corpus's candidates and signals from
its own index, each corpus weighing the same) ranks X's queries within their candidates; beside it the fixed-weight
default (the same candidates' order) and the TF-IDF and BM25 baselines over the whole corpus, measured in the same
run. Prints recall@10 / MRR and the ratio of recall@10 to the best lexical baseline, for every configuration given
(objectives x normalisations). `--cache DIR` keeps each corpus's candidates and signals (.npz, no pickle) so a
second run skips the indexes. `--write` fits the first configuration on every corpus and writes the shipped JSON
with its provenance and the leave-one-corpus-out figures (the package uses it only if it beat the fixed weights
on every corpus). Nothing else is written. Figures: docs/ranking.md, "The transferable default".
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import subprocess
import sys
import time
from pathlib import Path

from recommender import Index
from recommender.evaluate.gold import load_gold_jsonl
from recommender.evaluate.transfer import Config, CorpusData, collect_corpus, fit_default, leave_one_out
from recommender.rank.default_model import TRANSFER_SIGNALS, default_model_text, feature_names


def corpus(spec: str, cache: Path | None) -> CorpusData:
    name, index_dir, gold_path = spec.split("=", 2)
    path = cache / f"{name}.npz" if cache else None
    if path is not None and path.exists():
        return CorpusData.load(path)
    timer = time.perf_counter()
    with Index.open(index_dir) as index:
        data = collect_corpus(index, load_gold_jsonl(gold_path), name)
    print(f"{name}: {data.queries} queries, {len(data.y)} candidate pairs, baselines {data.baselines} "
          f"({time.perf_counter() - timer:.0f} s)", file=sys.stderr, flush=True)
    if path is not None:
        cache.mkdir(parents=True, exist_ok=True)
        data.save(path)
    return data


def cell(f: dict, best: float) -> str:
    return f"{f['recall@10']:.3f} / {f['mrr']:.3f} ({f['recall@10'] / best:.3f}x)"


def print_table(title: str, table: dict) -> None:
    print(f"\n{title}")
    print("corpus (queries) | fixed default | transferable default (LOCO) | TF-IDF | BM25 | best lexical")
    for name, row in table.items():
        best = max(row["tfidf"]["recall@10"], row["bm25"]["recall@10"])
        lexical = max(("tfidf", "bm25"), key=lambda s: row[s]["recall@10"])
        print(f"{name} ({row['queries']}) | {cell(row['fixed'], best)} | {cell(row['transfer'], best)} | "
              f"{cell(row['tfidf'], best)} | {cell(row['bm25'], best)} | {lexical}")
    lows = {k: min(row[k]["recall@10"] / max(row["tfidf"]["recall@10"], row["bm25"]["recall@10"])
                   for row in table.values()) for k in ("fixed", "transfer")}
    wins = all(row["transfer"]["recall@10"] > row["fixed"]["recall@10"] for row in table.values())
    print(f"lowest ratio: fixed {lows['fixed']:.3f}x, transfer {lows['transfer']:.3f}x; "
          f"transfer beats fixed on every corpus: {wins}")
    for name, row in table.items():
        print(f"  weights without {name}: " + ", ".join(f"{k} {v:+.3f}" for k, v in row["weights"].items()))


def code_version() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", action="append", required=True, help="NAME=INDEX=GOLD (repeat)")
    parser.add_argument("--cache", type=Path, help="folder keeping each corpus's candidates and signals")
    parser.add_argument("--objective", action="append", choices=("listwise", "pointwise"))
    parser.add_argument("--normalise", action="append", choices=("centre", "standardise"))
    parser.add_argument("--drop", action="append", default=[], choices=TRANSFER_SIGNALS,
                        help="leave a signal out (repeat)")
    parser.add_argument("--add", action="append", default=[], choices=feature_names()[len(TRANSFER_SIGNALS):],
                        help="add a feature: a path/page-type signal, or rr:NAME, a candidate's reciprocal rank")
    parser.add_argument("--penalty", action="append", type=float, help="listwise L2 penalty (repeat; default 0.1)")
    parser.add_argument("--write", type=Path, help="write the shipped model (first configuration, every corpus)")
    args = parser.parse_args()
    corpora = [corpus(spec, args.cache) for spec in args.corpus]
    signals = tuple(s for s in TRANSFER_SIGNALS if s not in args.drop) + tuple(args.add)
    configs = [Config(signals=signals, normalise=n, objective=o, penalty=p)
               for o, n, p in itertools.product(args.objective or ["listwise"], args.normalise or ["centre"],
                                                args.penalty or [0.1])]
    tables = []
    for config in configs:
        timer = time.perf_counter()
        table = leave_one_out(corpora, config)
        for data in corpora:
            table[data.name]["queries"] = data.queries
        tables.append(table)
        print_table(f"{config.objective} (penalty {config.penalty:g}), {config.normalise} per query, signals: {', '.join(config.signals)} "
                    f"({time.perf_counter() - timer:.0f} s)", table)
    if args.write:
        model = fit_default(corpora, configs[0])
        model.loco = {name: {k: v for k, v in row.items() if k != "weights"} for name, row in tables[0].items()}
        model.provenance = {
            "corpora": {d.name: {"queries": d.queries, "candidate_pairs": int(len(d.y))} for d in corpora},
            "signals": list(configs[0].signals), "objective": configs[0].objective,
            "normalise": f"{configs[0].normalise} over each query's candidates",
            "balance": "each corpus weighs the same (at most 2,000 queries of a corpus sampled, seed 0)",
            "date": datetime.date.today().isoformat(), "code_version": code_version(),
            "command": "python scripts/measure_transfer.py " + " ".join(sys.argv[1:])}
        args.write.write_text(default_model_text(model), encoding="utf-8")
        print(f"\nwrote {args.write}: in use instead of the fixed weights: {model.beats_default()}")


if __name__ == "__main__":
    main()
