"""The error of each z-statistic the two-stage ranking estimates instead of computing over the whole row: for a
seeded sample of queries of an index, the exact figure (the full row) against the estimate
(recommender.rank.candidates: the TF-IDF mean by algebra, its mean square exact over the query's lexical pool and from the fixed sample of rows for the rest; the
window score's and max-sim's mean and deviation from the fixed sample; the mention row's, exact from its sparse
row), as the error of the mean in units of the exact deviation and the relative error of the deviation.

    python scripts/measure_sample_stats.py --index /tmp/idx/mdn [--queries 500]
"""

from __future__ import annotations

import argparse

import numpy as np

from recommender import Index
from recommender.rank.candidates import LEXICAL_SAMPLE
from recommender.rank.exactranking import row_stats
from recommender.rank.windowstage import WINDOW_SAMPLE


def summary(name: str, exact_mean, exact_std, mean, std) -> None:
    ok = exact_std > 1e-12
    mean_err = np.abs(mean - exact_mean)[ok] / exact_std[ok]
    std_err = np.abs(std / np.where(ok, exact_std, 1) - 1)[ok]
    print(f"{name:12} mean error (x exact std): median {np.median(mean_err):.4f} p95 "
          f"{np.percentile(mean_err, 95):.4f} max {mean_err.max():.4f} | std relative error: median "
          f"{np.median(std_err):.4f} p95 {np.percentile(std_err, 95):.4f} max {std_err.max():.4f} ({ok.sum()} rows)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with Index.open(args.index) as index:
        ranker = index.ranker(learned=False)
        rows = np.sort(np.random.default_rng(args.seed).choice(len(index), min(args.queries, len(index)),
                                                               replace=False))
        print(f"{args.index}: {len(index)} articles, {len(rows)} queries; samples: {LEXICAL_SAMPLE} rows (lexical), "
              f"{WINDOW_SAMPLE} rows (window)")
        lex = ranker.lexical_stage()
        full = index.data.lexical.tfidf_rows(rows)
        exact_mean, exact_std = (x[:, 0] for x in row_stats(full))
        depth = ranker.ranking.candidates + 1
        est = np.array([lex.stats(*lex.row(int(r)), lex.pool(*lex.row(int(r)), depth)[:2]) for r in rows])
        summary("lexical", exact_mean, exact_std, est[:, 0], est[:, 1])
        mention = index.data.lexical.mention_rows(rows)
        exact_mean, exact_std = (x[:, 0] for x in row_stats(mention))
        est = np.array([lex.mention_stats(lex.mention_row(int(r))[1]) for r in rows])
        summary("mention", exact_mean, exact_std, est[:, 0], est[:, 1])
        if ranker.windows is not None:  # as the ranker estimates them: its window pool exact, the rest sampled
            got = {"window": [], "window_max": []}
            for r in rows:
                cand = ranker.score_rows(np.array([r]))[0]
                stats = ranker.last_stats[0]
                for name in got:
                    got[name].append(stats[name])
            score, best = ranker.windows.rows(rows, with_max=True)
            for name, full_rows in (("window", score), ("window_max", best)):
                exact_mean, exact_std = (x[:, 0] for x in row_stats(full_rows))
                est = np.array(got[name])
                summary(name, exact_mean, exact_std, est[:, 0], est[:, 1])

if __name__ == "__main__":
    main()
