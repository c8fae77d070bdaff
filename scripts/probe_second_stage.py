"""Probe: list-free second-stage signals on top of the default ranking (issue 23), against the unchanged default
in the same run.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=$PWD python scripts/probe_second_stage.py \
        --corpus python_docs=INDEX=GOLD --corpus netlify_blog=INDEX=GOLD --corpus manpages=INDEX=GOLD \
        --choose manpages

For each corpus: the default ranking's candidates of EVERY article (`HybridRanker.score_rows`, as `evaluate`'s
`system` row gets them; the corpora here are small enough for every article's list and the full article x article
similarity matrices), then each variant re-scores a query's candidates as

    score + beta * z(signal)

(z over the query's own candidates) and the link policy orders them exactly as `system` (`PolicyScorer`); the
figures are `evaluate`'s (every gold link ranked in the full ranking; recall@10 and MRR). The signals:

* pseudo-relevance feedback (Rocchio) over the query's top m candidates by the default score: the cosine of each
  candidate to their centroid, with the article vectors (`prf_dense`) or the TF-IDF rows (`prf_tfidf`); the same
  with the window-level score (`prf_window`: mean of the window score to the m) and with the default score itself
  (`prf_hybrid`: mean of the m articles' own default score for the candidate, their lowest candidate's score when it
  is not one of theirs, the candidate itself left out); `_loo`: a top article's own centroid leaves it out (the
  others' mean), so that the m do not lift themselves by their similarity to themselves;
* mutual neighbours: the candidate's own default score for the query (`rev_score`: its lowest candidate's score
  when the query is not one of its candidates), or -log2(1 + the query's rank in the candidate's list)
  (`rev_rank`; the list's length + 1 when absent), or "the query is in the candidate's top 10" (`rev_top10`).

Parameters per signal are chosen on the `--choose` corpus (best recall@10, then MRR) and shown on the others; the
whole grid is printed too (`--grid`). `--head K`: only the best K candidates are re-ordered (the signal's z over
them), keeping their scores in the new order, the rest below as they were. TF-IDF and BM25 come from `evaluate_index` in the same run (the ratio is to
the better of them). Nothing is written. Figures: docs/ranking.md ("Second-stage signals for sites without
lists: tried").
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from recommender import Index
from recommender.evaluate.evaluation import PolicyScorer, evaluate_index, rank_system
from recommender.evaluate.gold import load_gold_jsonl
from recommender.evaluate.metrics import gold_in_index
from recommender.rank.policy import TARGETS, Policy

BETAS = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
MS = (3, 5, 10)
PRF = ("prf_dense", "prf_tfidf", "prf_window", "prf_dense_loo", "prf_tfidf_loo", "prf_window_loo", "prf_hybrid")
MUTUAL = ("rev_score", "rev_rank", "rev_top10")


def zq(values: np.ndarray) -> np.ndarray:
    """z-score over one query's candidates (0 when constant)."""
    std = values.std()
    return (values - values.mean()) / std if std > 1e-12 else np.zeros_like(values)


class VariantScorer(PolicyScorer):
    """`system` with each query's candidates replaced by re-scored ones (then ordered by the link policy)."""

    def __init__(self, index, policy, cands: dict, name: str):
        super().__init__(index, policy, name=name)
        self.cands = cands

    def candidates(self, rows: np.ndarray) -> list:
        return [self.cands[int(r)] for r in rows]


class Corpus:
    """One corpus: baselines, every article's default candidates and the article x article similarities."""

    def __init__(self, name: str, index_dir: str, gold_path: str, head: int = 0):
        self.name, self.head = name, head
        timer = time.perf_counter()
        self.index = Index.open(index_dir)
        self.policy = Policy().with_links(targets=TARGETS)  # as evaluate_index does
        gold = load_gold_jsonl(gold_path)
        report = evaluate_index(self.index, gold, baselines=("tfidf", "bm25"), dense=False, learned=False,
                                overrides=False, policy=self.policy)
        self.reported = {s.system: (s.overall["recall@10"], s.overall["mrr"]) for s in report.systems}
        self.ids = self.index.data.store.ids()
        row = {x: i for i, x in enumerate(self.ids)}
        kept, _ = gold_in_index(gold, row)
        self.queries = [row[q] for q in sorted(kept)]
        self.gold = {row[q]: [row[g] for g in kept[q]] for q in kept}
        self.scorer = PolicyScorer(self.index, self.policy)
        ranker = self.scorer.ranker()
        n = self.n = len(self.ids)
        self.lists = ranker.score_rows(np.arange(n))  # every article's default candidates, best first
        # each article's default score and rank for each of its candidates (NaN / inf when not one)
        self.score = np.full((n, n), np.nan, np.float32)
        self.rank = np.full((n, n), np.inf, np.float32)
        for c in self.lists:
            self.score[c.query, c.rows] = c.score
            self.rank[c.query, c.rows] = np.arange(1, len(c.rows) + 1)
        self.floor = np.array([c.score.min() if len(c.rows) else 0.0 for c in self.lists], np.float32)
        self.length = np.array([len(c.rows) for c in self.lists], np.float32)
        vectors = ranker.vectors
        self.sim = {"prf_dense": vectors @ vectors.T,
                    "prf_tfidf": self.index.data.lexical.tfidf_rows(np.arange(n)).astype(np.float32)}
        if ranker.windows is not None:
            self.sim["prf_window"] = ranker.windows.rows(np.arange(n))
        self.seconds = time.perf_counter() - timer

    def signal(self, kind: str, q: int, cand: np.ndarray, order_score: np.ndarray, m: int) -> np.ndarray:
        """One signal's raw value for each of query q's candidates (best first by order_score)."""
        if kind.removesuffix("_loo") in self.sim:
            top = cand[np.argsort(-order_score, kind="stable")[:m]]
            sims = self.sim[kind.removesuffix("_loo")][np.ix_(cand, top)].astype(np.float64)
            if kind.endswith("_loo"):  # a top article's centroid is the other m - 1's
                sims[cand[:, None] == top[None, :]] = np.nan
            return np.nanmean(sims, axis=1)
        if kind == "prf_hybrid":
            top = cand[np.argsort(-order_score, kind="stable")[:m]]
            given = self.score[np.ix_(top, cand)].astype(np.float64)  # top article t's score for candidate c
            given = np.where(np.isnan(given), self.floor[top][:, None], given)
            given[top[:, None] == cand[None, :]] = np.nan  # an article says nothing about itself
            out = np.nanmean(given, axis=0)
            return np.where(np.isnan(out), 0.0, out)
        if kind == "rev_score":
            back = self.score[cand, q].astype(np.float64)
            return np.where(np.isnan(back), self.floor[cand], back)
        back = np.where(np.isinf(self.rank[cand, q]), self.length[cand] + 1, self.rank[cand, q])
        if kind == "rev_rank":
            return -np.log2(1 + back)
        if kind == "rev_top10":
            return (back <= 10).astype(np.float64)
        raise ValueError(kind)

    def rescored(self, terms: list[tuple[str, int, float]]) -> dict:
        """Every query's candidates with score + sum of beta * z(signal), re-sorted (ties: lower row)."""
        out = {}
        for q in self.queries:
            c = self.lists[q]
            if self.head:  # only the head is re-ordered, and it keeps its scores in its new order (rest unchanged)
                c = c.take(np.arange(min(self.head, len(c.rows))))
            score = c.score.astype(np.float64)
            new = score.copy()
            for kind, m, beta in terms:
                new += beta * zq(self.signal(kind, q, c.rows, score, m))
            order = np.lexsort((c.rows, -new))
            moved = type(c)(c.query, c.rows, new.astype(np.float32), c.raw, c.z).take(order)
            if self.head:
                full = self.lists[q]
                rows = np.concatenate([moved.rows, full.rows[len(c.rows):]])
                moved = type(c)(c.query, rows, full.score, {}, {})
            out[q] = moved
        return out

    def measure(self, terms: list[tuple[str, int, float]], name: str = "variant") -> tuple[float, float]:
        cands = self.rescored(terms) if terms else {q: self.lists[q] for q in self.queries}
        result = rank_system(VariantScorer(self.index, self.policy, cands, name), self.queries, self.gold, self.ids,
                             ks=(10,))
        return result.overall["recall@10"], result.overall["mrr"]

    @property
    def best_lexical(self) -> float:
        return max(self.reported["tfidf"][0], self.reported["bm25"][0])


def grid() -> list[tuple[str, list]]:
    out = []
    for kind in PRF:
        out += [(f"{kind} m={m} beta={b:g}", [(kind, m, b)]) for m in MS for b in BETAS]
    for kind in MUTUAL:
        out += [(f"{kind} beta={b:g}", [(kind, 0, b)]) for b in BETAS]
    return out


def cell(c: Corpus, figures: tuple[float, float]) -> str:
    return f"{figures[0]:.3f} / {figures[1]:.3f} ({figures[0] / c.best_lexical:.3f}x)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", action="append", required=True, help="NAME=INDEX=GOLD (repeat)")
    parser.add_argument("--choose", required=True, help="the corpus NAME the parameters are chosen on")
    parser.add_argument("--head", type=int, default=0,
                        help="re-order only each query's best HEAD candidates, z over them (default: every candidate)")
    parser.add_argument("--grid", action="store_true", help="print every variant on every corpus")
    args = parser.parse_args()
    corpora = []
    for spec in args.corpus:
        corpora.append(Corpus(*spec.split("=", 2), head=args.head))
        c = corpora[-1]
        print(f"{c.name}: {len(c.queries)} queries, {c.n} articles, evaluate: " + ", ".join(
            f"{k} {v[0]:.3f} / {v[1]:.3f}" for k, v in c.reported.items()) + f" ({c.seconds:.0f} s)",
              file=sys.stderr, flush=True)
    chooser = next(c for c in corpora if c.name == args.choose)
    base = {c.name: c.measure([], "default") for c in corpora}
    for c in corpora:  # the unchanged default through this script equals evaluate's `system` row
        assert np.allclose(base[c.name], c.reported["system"]), (c.name, base[c.name], c.reported["system"])
    figures: dict[str, dict[str, tuple[float, float]]] = {}
    variants = grid()
    timer = time.perf_counter()
    for i, (label, terms) in enumerate(variants):
        figures[label] = {c.name: c.measure(terms) for c in corpora}
        if i == 2:
            print(f"grid: about {(time.perf_counter() - timer) / 3 * len(variants):.0f} s", file=sys.stderr,
                  flush=True)
    # per signal: the parameters best on the chosen corpus (recall@10, then MRR)
    chosen = {}
    for kind in PRF + MUTUAL:
        labels = [label for label, _ in variants if label.split()[0] == kind]
        best = max(labels, key=lambda label: figures[label][chooser.name])
        chosen[kind] = (best, dict(variants)[best])
    prf = max((chosen[k] for k in PRF), key=lambda v: figures[v[0]][chooser.name])
    mutual = max((chosen[k] for k in MUTUAL), key=lambda v: figures[v[0]][chooser.name])
    both = f"{prf[0]} + {mutual[0]}"
    figures[both] = {c.name: c.measure(prf[1] + mutual[1]) for c in corpora}
    names = [c.name + (" (chosen on)" if c is chooser else " (check)") for c in corpora]
    print("\nrecall@10 / MRR (ratio of recall@10 to the best lexical baseline)")
    print("| variant | " + " | ".join(names) + " | lowest ratio |")
    print("|---|" + "---|" * len(corpora) + "---|")

    def line(label, figs):
        ratios = [figs[c.name][0] / c.best_lexical for c in corpora]
        print(f"| {label} | " + " | ".join(cell(c, figs[c.name]) for c in corpora) + f" | {min(ratios):.3f}x |")

    line("default (unchanged)", base)
    for kind in PRF + MUTUAL:
        line(chosen[kind][0], figures[chosen[kind][0]])
    line(both, figures[both])
    for name in ("tfidf", "bm25"):
        print(f"| {name} | " + " | ".join(f"{c.reported[name][0]:.3f} / {c.reported[name][1]:.3f}"
                                          for c in corpora) + " | |")
    if args.grid:
        print("\nevery variant (recall@10 / MRR, delta recall@10 to the default)")
        for label, _ in variants:
            print(f"{label:32s} " + "  ".join(
                f"{c.name} {figures[label][c.name][0]:.3f} / {figures[label][c.name][1]:.3f} "
                f"({figures[label][c.name][0] - base[c.name][0]:+.3f})" for c in corpora))


if __name__ == "__main__":
    main()
