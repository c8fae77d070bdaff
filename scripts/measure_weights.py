"""Choose the default ranking's weights for the worst corpus: every weighting of a grid, scored on each corpus's
curated gold, reported by its lowest ratio to that corpus's best lexical baseline.

    python scripts/measure_weights.py --corpus INDEX=GOLD [--corpus INDEX2=GOLD2 ...] [--check INDEX=GOLD] [--top 15]

For each corpus the script measures the TF-IDF and BM25 baselines (`evaluate_index`, the whole corpus, as
`recommender evaluate` reports them), collects every curated query's candidates and the z-score of each part of
the hybrid score once, then ranks the candidates under every weighting of the grid (before the link policy's
steps, as training and docs/ranking.md do) and prints recall@10 / MRR, the ratio of recall@10 to the best lexical
baseline, and the lowest ratio over the `--corpus` corpora, which orders the table. `--check` corpora are scored
and shown but never order it: a held-out check of the choice. Nothing is written. Figures: docs/ranking.md.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np

from recommender import Index
from recommender.evaluate.evaluation import evaluate_index
from recommender.evaluate.gold import load_gold_jsonl
from recommender.rank.policy import Policy, Ranking

PARTS = ("dense", "window", "lexical", "mention")
GRID = {"dense": (0, .1, .2, .3, .4), "window": (0, .2, .3, .4, .5, .6, .7), "lexical": (.2, .3, .4, .55),
        "mention": (0, .05, .1, .15)}


class Corpus:
    """One corpus's curated queries: every candidate's part z-scores, flat, and where its gold links sit."""

    def __init__(self, index_dir: str, gold_path: str):
        self.name = f"{index_dir} ({gold_path})"
        with Index.open(index_dir) as index:
            gold = load_gold_jsonl(gold_path)
            report = evaluate_index(index, gold, baselines=("tfidf", "bm25"), dense=False, learned=False,
                                    overrides=False)
            self.baselines = {s.system: s.overall["recall@10"] for s in report.systems if s.system in ("tfidf", "bm25")}
            ids = index.data.store.ids()
            row = {x: i for i, x in enumerate(ids)}
            everything = Ranking(**{p: 1.0 for p in PARTS})  # every part computed; the grid weighs them
            ranker = index.ranker(Policy(ranking=everything), learned=False)
            queries = [q for q in sorted(gold) if q in row and any(g in row for g in gold[q])]
            z, rows, owner, gold_at, self.wanted = [], [], [], [], np.zeros(len(queries))
            offset = 0
            for start in range(0, len(queries), 256):
                block = queries[start:start + 256]
                for j, cand in enumerate(ranker.score_rows(np.array([row[q] for q in block]))):
                    i = start + j
                    wanted = {row[g] for g in gold[queries[i]] if g in row}
                    self.wanted[i] = len(wanted)
                    z.append(np.stack([cand.z.get(p, np.zeros(len(cand.rows))) for p in PARTS]))
                    rows.append(cand.rows)
                    owner.append(np.full(len(cand.rows), i))
                    gold_at += [offset + k for k in np.flatnonzero(np.isin(cand.rows, list(wanted)))]
                    offset += len(cand.rows)
        self.z = np.concatenate(z, axis=1).astype(np.float32)
        self.rows = np.concatenate(rows)
        self.owner = np.concatenate(owner)
        self.gold_at = np.array(gold_at, dtype=np.int64)
        starts = np.searchsorted(self.owner, np.arange(len(queries)))
        counts = np.bincount(self.owner, minlength=len(queries))
        q = self.owner[self.gold_at]
        # every (gold candidate, candidate of the same query) pair, to count who ranks above each gold link
        self.pair_gold = np.repeat(np.arange(len(self.gold_at)), counts[q])
        self.pair_cand = np.concatenate([np.arange(starts[x], starts[x] + counts[x]) for x in q]) \
            if len(q) else np.zeros(0, np.int64)
        self.queries = len(queries)
        # each gold link only competes with candidates that could outrank it under some weighting of the grid:
        # a candidate below it on every part never does (the weights are not negative)
        g = self.gold_at[self.pair_gold]
        keep = (self.z[:, self.pair_cand] >= self.z[:, g]).any(axis=0)
        self.pair_gold, self.pair_cand = self.pair_gold[keep], self.pair_cand[keep]

    def score(self, weights: np.ndarray) -> tuple[float, float]:
        s = weights @ self.z / weights.sum()
        g = self.gold_at[self.pair_gold]
        sg, sc = s[g], s[self.pair_cand]
        above = (sc > sg) | ((sc == sg) & (self.rows[self.pair_cand] < self.rows[g]))
        rank = np.bincount(self.pair_gold, weights=above, minlength=len(self.gold_at)) + 1
        q = self.owner[self.gold_at]
        hits = np.bincount(q, weights=rank <= 10, minlength=self.queries)
        best = np.full(self.queries, np.inf)
        np.minimum.at(best, q, rank)
        return float((hits / self.wanted).mean()), float((1 / best).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", action="append", required=True, help="INDEX=GOLD (repeat)")
    parser.add_argument("--check", action="append", default=[], help="INDEX=GOLD held out of the choice (repeat)")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    corpora = []
    chosen_by = len(args.corpus)
    for spec in args.corpus + args.check:
        timer = time.perf_counter()
        corpora.append(Corpus(*spec.split("=", 1)))
        print(f"{corpora[-1].name}: {corpora[-1].queries} queries, baselines {corpora[-1].baselines} "
              f"({time.perf_counter() - timer:.0f} s)", file=sys.stderr, flush=True)
    rows = []
    timer = time.perf_counter()
    for combo in itertools.product(*(GRID[p] for p in PARTS)):
        weights = np.array(combo, dtype=np.float32)
        if not weights.sum():
            continue
        figures = [c.score(weights) for c in corpora]
        ratios = [rec / max(c.baselines.values()) for (rec, _), c in zip(figures, corpora)]
        rows.append((min(ratios[:chosen_by]), combo, figures, ratios))
        if len(rows) == 5:
            total = np.prod([len(v) for v in GRID.values()])
            print(f"grid: about {(time.perf_counter() - timer) / 5 * total:.0f} s", file=sys.stderr, flush=True)
    rows.sort(key=lambda r: (-r[0], -sum(f[0] for f in r[2])))
    names = [c.name if i < chosen_by else f"held out: {c.name}" for i, c in enumerate(corpora)]
    print("weights " + "/".join(PARTS) + " | " + " | ".join(names) + " | lowest ratio (chosen by)")
    for low, combo, figures, ratios in rows[:args.top]:
        cells = [f"{rec:.3f} / {mrr:.3f} ({ratio:.3f}x)" for (rec, mrr), ratio in zip(figures, ratios)]
        print(" / ".join(f"{w:g}" for w in combo) + " | " + " | ".join(cells) + f" | {low:.3f}")
    default = Ranking()
    for low, combo, figures, ratios in rows:
        if combo == tuple(getattr(default, p) for p in PARTS):
            cells = [f"{rec:.3f} / {mrr:.3f} ({ratio:.3f}x)" for (rec, mrr), ratio in zip(figures, ratios)]
            print("default " + " / ".join(f"{w:g}" for w in combo) + " | " + " | ".join(cells) + f" | {low:.3f}")


if __name__ == "__main__":
    main()
