"""The two-stage ranking against the exact one (every query scored against the whole corpus), on one index and
its gold: recall@10 and MRR of each system (the default ranking and the learned ranking under the same
cross-validation, each protocol) in both modes, their differences, and how often the top-10 lists agree
(overlap@10: the share of a query's top 10 that the other mode also has, averaged over the queries).

    python scripts/compare_retrieval.py --index /tmp/idx/mdn --gold ../shared/corpora/mdn/gold.jsonl [--json OUT]
    python scripts/compare_retrieval.py --index I --gold G --reference two-stage --bounded [--impact-budget N]

--bounded: the compared run takes the retrieval a large site gets, forced on whatever the corpus's size: lexical
candidates from the impact-ordered lists' heads (candidates.EXACT_POSTINGS = 0) and window candidates from the
stored IVF window index (windowstage.EXACT_WINDOW_SEARCH = 0); --impact-budget sets the postings it reads
(candidates.IMPACT_BUDGET), e.g. scaled down so that a small corpus's lexical pools are as incomplete as a large
one's. --windows-only forces the window search alone (the lexical candidates as the corpus's size gets them);
--window-nprobe sets the stored IVF window index's nprobe (several: one compared run each), e.g. what another
tuning (store.windowrecall.tune_nprobe) would choose for it. With --reference two-stage the reference is the ranking
as the corpus gets it today (two-stage at its size's settings), so the figures say what the bounded retrieval
changes in the lists. Run the script with another
commit's code on PYTHONPATH to measure that code's retrieval the same way.

The issue's target: |difference| <= 0.005 for recall@10 and MRR, overlap@10 >= 0.95. Nothing is written to the
index.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

from recommender import Index
from recommender.evaluate.evaluation import evaluate_index
from recommender.rank import candidates, windowstage
from recommender.evaluate.gold import load_gold_jsonl
from recommender.rank.policy import Policy

METRICS = ("recall@10", "mrr")


def bounded(budget: int | None, windows_only: bool = False) -> dict:
    """Force the bounded retrieval (see the module's docstring); returns the settings it replaced, as
    {(module, name): value}."""
    saved = {(module, name): getattr(module, name) for module, name in
             ((candidates, "EXACT_POSTINGS"), (candidates, "IMPACT_BUDGET"), (windowstage, "EXACT_WINDOW_SEARCH"))}
    windowstage.EXACT_WINDOW_SEARCH = 0
    if not windows_only:
        candidates.EXACT_POSTINGS = 0
    if budget:
        candidates.IMPACT_BUDGET = budget
    return saved


def run(index: Index, gold, retrieval: str, learned: bool, seed: int, sample: int | None = None):
    base = Policy()
    policy = replace(base, ranking=replace(base.ranking, retrieval=retrieval))
    start = time.perf_counter()
    result = evaluate_index(index, gold, baselines=(), policy=policy, dense=False, learned=learned, seed=seed,
                            sample=sample)
    return result, time.perf_counter() - start


def overlap(a, b, k: int = 10) -> float:
    tops = {o.query: [i for i, _ in o.top[:k]] for o in b.per_query}
    shares = [len(set(x for x, _ in o.top[:k]) & set(tops[o.query])) / max(1, min(k, len(o.top)))
              for o in a.per_query]
    return sum(shares) / max(1, len(shares))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True)
    parser.add_argument("--gold", required=True)
    parser.add_argument("--no-learned", action="store_true", help="only the default ranking")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample", type=int, help="a seeded sample of this many queries (default: every one)")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--reference", choices=("exact", "two-stage"), default="exact",
                        help="what the two-stage run is compared with (default: the exact ranking)")
    parser.add_argument("--bounded", action="store_true",
                        help="the compared run with the bounded retrieval forced on (module docstring)")
    parser.add_argument("--impact-budget", type=int, nargs="*", default=[None],
                        help="with --bounded: postings the lexical heads read (several: one compared run each)")
    parser.add_argument("--windows-only", action="store_true",
                        help="with --bounded: force only the window search (no lexical heads)")
    parser.add_argument("--window-nprobe", type=int, nargs="*", default=[None],
                        help="with --bounded: the IVF window index's nprobe (several: one compared run each)")
    args = parser.parse_args()
    gold = load_gold_jsonl(args.gold)
    rows, seconds = [], {}
    with Index.open(args.index) as index:
        reference, seconds["reference"] = run(index, gold, args.reference, not args.no_learned, args.seed,
                                                  args.sample)
    runs = [(b, p) for b in args.impact_budget for p in args.window_nprobe] if args.bounded else [(None, None)]
    for budget, nprobe in runs:
        settings = bounded(budget, args.windows_only) if args.bounded else {}
        with Index.open(args.index) as index:  # a fresh index: no ranker or cache shared with the other runs
            ann = index.data.window_ann(approximate_only=True) if args.bounded else None
            if nprobe and ann is not None and ann.approximate:
                ann.nprobe = nprobe
            two, two_s = run(index, gold, "two-stage", not args.no_learned, args.seed, args.sample)
        compared = "two-stage"
        if args.bounded:
            compared = "bounded windows" if args.windows_only else \
                f"bounded, impact budget {budget or candidates.IMPACT_BUDGET}"
            if ann is not None and ann.approximate:
                compared += f", window nprobe {ann.nprobe}"
        for (module, name), value in settings.items():
            setattr(module, name, value)
        seconds[compared] = two_s
        print(f"{args.index}: {reference.queries} queries; evaluation took {seconds['reference']:.1f} s "
              f"{args.reference}, {two_s:.1f} s {compared}")
        print(f"{'system':45} {'metric':10} {args.reference[:7]:>7} {'compared':>8} {'diff':>7}  overlap@10")
        for system in reference.systems:
            other = two.system(system.system)
            share = overlap(system, other)
            for m in METRICS:
                a, b = system.overall[m], other.overall[m]
                print(f"{system.system:45} {m:10} {a:7.4f} {b:8.4f} {b - a:+7.4f}  {share:.4f}")
                rows.append({"compared": compared, "system": system.system, "metric": m, "reference": a,
                             "value": b, "diff": b - a, "overlap@10": share})
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"index": args.index, "gold": args.gold, "queries": reference.queries,
                       "reference": args.reference, "rows": rows, "seconds": seconds}, handle, indent=1)


if __name__ == "__main__":
    main()
