"""Probe: where the learned ranking misses under the `new` protocol (issue 23), link by link.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=$PWD python scripts/probe_new_misses.py \
        --corpus python_docs=INDEX=GOLD [--corpus ...] [--dump DIR]

For each corpus: the learned ranking's `new` row exactly as `recommender evaluate` computes it
(`training.cross_validated_candidates`' nested 5-fold models, seed 0, re-scoring the default ranking's candidates;
then the link policy's order, `CrossValidatedScorer` + `rank_system`; the script prints its recall@10 / MRR, which
must equal `evaluate`'s `learned, new articles` row), and for every gold link of every held-out query:

* its rank in that row (1-based; a link outside the candidates ranks below every candidate);
* whether it is among the query's candidates at all, and each pool's view of it: its rank in the query's full row
  of the dense cosine, the TF-IDF cosine, the window score and the mention weight (over every other article), so
  "found by pool P at size s" is "rank in P's row <= s" (the pools hold `[ranking] candidates` + 1 = 201);
* what may tell it apart: how its title relates to the query (its title words in the query's text; its leaf name
  in the query's text; the same leaf name under another parent), its URL path (parent / child / sibling), its
  length, how many texts name it and how many other curated lists link to it (its popularity in lists).

It prints per corpus the counts (top 10, 11-50, 51+ within the candidates, never retrieved) and, per group, the
share of links with each property, and which pool would find the never-retrieved ones at which size.
`--dump DIR` writes one JSONL line per gold link (`DIR/CORPUS.jsonl`). Nothing else is written.
Figures: docs/ranking.md ("Where the `new` protocol misses").
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np

from recommender import Index
from recommender.evaluate.evaluation import CrossValidatedScorer, rank_system
from recommender.evaluate.gold import load_gold_jsonl
from recommender.evaluate.metrics import gold_in_index
from recommender.evaluate.training import cross_validated_candidates
from recommender.rank.policy import TARGETS, Policy

POOL_SIZES = (201, 400, 800, 1600)
GROUPS = ("top10", "11-50", "51+", "not retrieved")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


def leaf(article_id: str) -> str:
    """The last name of an id: `numpy.ndarray.all` -> all, `c-api/long` -> long, `printf.3` -> printf."""
    base = re.sub(r"\.\d\w*$", "", article_id)  # a man page's section
    return re.split(r"[./]", base)[-1].lower()


def parent(article_id: str) -> str:
    base = re.sub(r"\.\d\w*$", "", article_id)
    parts = re.split(r"[./]", base)
    return ".".join(parts[:-1]).lower()


def full_ranks(row: np.ndarray, query: int, gold: list[int]) -> list[int]:
    """1-based rank of each gold row in a full score row (the query excluded; ties: lower row first); 0 scores
    count as never ranked when the row is sparse-like (inf)."""
    row = np.asarray(row, dtype=np.float64).copy()
    row[query] = -np.inf
    out = []
    for g in gold:
        v = row[g]
        better = int(np.sum(row > v)) + int(np.sum(row[:g] == v))
        out.append(better + 1)
    return out


def group_of(rank: float, in_pool: bool) -> str:
    if not in_pool:
        return "not retrieved"
    return "top10" if rank <= 10 else "11-50" if rank <= 50 else "51+"


def analyse(name: str, index_dir: str, gold_path: str, dump: Path | None) -> dict:
    timer = time.perf_counter()
    index = Index.open(index_dir)
    policy = Policy().with_links(targets=TARGETS)
    ids = index.data.store.ids()
    row_of = {x: i for i, x in enumerate(ids)}
    kept, _ = gold_in_index(load_gold_jsonl(gold_path), row_of)
    gold = {row_of[q]: [row_of[g] for g in rel] for q, rel in kept.items()}
    queries = sorted(gold)
    result = cross_validated_candidates(index, policy, gold)["new"]
    scorer = CrossValidatedScorer(index, policy, "new", result)
    system = rank_system(scorer, queries, gold, ids)
    print(f"\n== {name}: learned, new articles: recall@10 {system.overall['recall@10']:.4f} "
          f"MRR {system.overall['mrr']:.4f} ({len(queries)} queries, {time.perf_counter() - timer:.0f} s)")
    ranker = index.ranker(policy, learned=False)
    lexical = index.data.lexical
    vectors = ranker.vectors
    texts = index.data.store.texts()
    titles = [t or "" for t, _, _ in texts]
    length = np.array([len((b or e or "").split()) for _, e, b in texts])
    body_lower = [(t + "\n" + (b or e or "")).lower() for t, e, b in texts]
    named_by = np.bincount(lexical.mentions.indices, minlength=len(ids))
    list_in = np.zeros(len(ids), np.int64)
    for q, rel in gold.items():
        for g in rel:
            list_in[g] += 1
    leaves = [leaf(x) for x in ids]
    parents = [parent(x) for x in ids]
    leaf_count: dict[str, int] = {}
    for x in leaves:
        leaf_count[x] = leaf_count.get(x, 0) + 1
    rows = []
    for start in range(0, len(queries), 64):
        block = np.array(queries[start:start + 64])
        dense = vectors[block] @ vectors.T
        tfidf = np.asarray(lexical.tfidf_rows(block), dtype=np.float64)
        mention = lexical.mention_rows(block)
        window = ranker.windows.rows(block) if ranker.windows is not None else None
        for i, q in enumerate(block):
            q = int(q)
            outcome = system.per_query[queries.index(q)]
            cand = result["cands"][q]
            pool = set(cand.rows.tolist())
            in_cands = {int(r): k + 1 for k, r in enumerate(cand.rows)}  # the learned order, before the policy
            ranks = {"dense": full_ranks(dense[i], q, gold[q]), "tfidf": full_ranks(tfidf[i], q, gold[q]),
                     "window": full_ranks(window[i], q, gold[q]) if window is not None else None}
            qwords = set(w.lower() for w in _WORD.findall(body_lower[q]))
            for j, g in enumerate(gold[q]):
                rank = outcome.gold_ranks[ids[g]]
                tw = set(w.lower() for w in _WORD.findall(titles[g]))
                rec = {"query": ids[q], "gold": ids[g], "rank": int(rank), "in_pool": g in pool,
                       "learned_rank": in_cands.get(g), "cosine": float(dense[i, g]),
                       "named_as_page": bool(re.search(re.escape(re.sub(r"\.(\d\w*)$", r"(\1)", ids[g]).lower()),
                                                       body_lower[q])) if re.search(r"\.\d\w*$", ids[g]) else None,
                       "group": group_of(rank, g in pool),
                       "dense_rank": ranks["dense"][j], "tfidf_rank": ranks["tfidf"][j],
                       "tfidf_zero": bool(tfidf[i, g] == 0),
                       "window_rank": ranks["window"][j] if window is not None else None,
                       "mention": float(mention[i, g]),
                       "names_out": float(lexical.mentions[q, g]), "names_in": float(lexical.mentions[g, q]),
                       "title_words_in_query": (len(tw & qwords) / len(tw)) if tw else 0.0,
                       "leaf_in_query": bool(re.search(r"\b" + re.escape(leaves[g]) + r"\b", body_lower[q])),
                       "same_leaf": leaves[g] == leaves[q],
                       "leaf_shared_by": leaf_count[leaves[g]],
                       "same_parent": parents[g] == parents[q] and parents[q] != "",
                       "is_parent": ids[g].lower() == parents[q] or (parents[q].endswith("/" + leaves[g])),
                       "is_child": parents[g] == re.sub(r"\.\d\w*$", "", ids[q]).lower(),
                       "length": int(length[g]), "query_length": int(length[q]),
                       "named_by": int(named_by[g]), "lists_in": int(list_in[g] - (g in gold.get(q, [])))}
                rows.append(rec)
    if dump is not None:
        dump.mkdir(parents=True, exist_ok=True)
        with open(dump / f"{name}.jsonl", "w") as handle:
            for rec in rows:
                handle.write(json.dumps(rec) + "\n")
    report(name, rows, length, named_by, list_in)
    index.close()
    return {"name": name, "links": len(rows)}


def report(name: str, rows: list[dict], length, named_by, list_in) -> None:
    total = len(rows)
    by = {g: [r for r in rows if r["group"] == g] for g in GROUPS}
    print(f"gold links {total}: " + ", ".join(f"{g} {len(by[g])} ({len(by[g]) / total:.1%})" for g in GROUPS))
    print(f"corpus medians: length {int(np.median(length))} words, named by {int(np.median(named_by))} texts, "
          f"in {np.median(list_in):.0f} lists")
    props = [("title words all in query text", lambda r: r["title_words_in_query"] == 1.0),
             ("leaf name in query text", lambda r: r["leaf_in_query"]),
             ("query text names it (names_out)", lambda r: r["names_out"] > 0),
             ("it names the query (names_in)", lambda r: r["names_in"] > 0),
             ("same leaf name", lambda r: r["same_leaf"]),
             ("same parent (sibling)", lambda r: r["same_parent"]),
             ("gold is the query's parent", lambda r: r["is_parent"]),
             ("gold is the query's child", lambda r: r["is_child"]),
             ("TF-IDF cosine 0", lambda r: r["tfidf_zero"]),
             ("named in query text as name(section)", lambda r: bool(r["named_as_page"])),
             ("policy moved it 10+ places down", lambda r: r["learned_rank"] is not None and r["rank"] >= r["learned_rank"] + 10),
             ("cosine to the query >= 0.98", lambda r: r["cosine"] >= 0.98),
             ("short (< 150 words)", lambda r: r["length"] < 150),
             ("long (> 3000 words)", lambda r: r["length"] > 3000),
             ("named by >= 20 texts", lambda r: r["named_by"] >= 20),
             ("in >= 5 other lists", lambda r: r["lists_in"] >= 5),
             ("in no other list", lambda r: r["lists_in"] == 0)]
    print(f"{'property':36s}" + "".join(f"{g:>15s}" for g in GROUPS))
    for label, test in props:
        print(f"{label:36s}" + "".join(
            f"{(sum(test(r) for r in by[g]) / len(by[g]) if by[g] else 0):>15.1%}" for g in GROUPS))
    for key in ("length", "named_by", "lists_in", "dense_rank", "tfidf_rank", "window_rank"):
        print(f"median {key:29s}" + "".join(
            f"{(np.median([r[key] for r in by[g]]) if by[g] and by[g][0][key] is not None else float('nan')):>15.0f}"
            for g in GROUPS))
    missing = by["not retrieved"]
    if missing:
        print(f"never retrieved ({len(missing)}): found by a pool of size s (rank in its full row <= s)")
        for pool in ("dense_rank", "tfidf_rank", "window_rank"):
            if missing[0][pool] is None:
                continue
            print(f"  {pool.removesuffix('_rank'):8s}" + "".join(
                f"  <= {s}: {sum(r[pool] <= s for r in missing)}" for s in POOL_SIZES))
        print(f"  any of the three <= 400: {sum(min(r['dense_rank'], r['tfidf_rank'], r['window_rank'] or 1e9) <= 400 for r in missing)}"
              f", <= 800: {sum(min(r['dense_rank'], r['tfidf_rank'], r['window_rank'] or 1e9) <= 800 for r in missing)}"
              f"; TF-IDF 0 (no shared term): {sum(r['tfidf_zero'] for r in missing)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", action="append", required=True, help="NAME=INDEX=GOLD")
    parser.add_argument("--dump", type=Path, help="write each corpus's gold links as JSONL here")
    args = parser.parse_args()
    for spec in args.corpus:
        name, index_dir, gold_path = spec.split("=", 2)
        analyse(name, index_dir, gold_path, args.dump)


if __name__ == "__main__":
    main()
