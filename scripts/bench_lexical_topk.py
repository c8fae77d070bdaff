"""Lexical candidates at scale: PostingsTopK (MaxScore over the TF-IDF postings) against the brute force the
ranker used (a sparse product against every document, LexicalIndex.tfidf_rows, then argpartition), and bm25s.

    PYTHONPATH=$PWD python scripts/bench_lexical_topk.py --real python_docs netlify_blog mdn --sizes 100000 1000000
    PYTHONPATH=$PWD python scripts/bench_lexical_topk.py --verify 4000 --sizes       # recombination == fit_tfidf?
    PYTHONPATH=$PWD python scripts/bench_lexical_topk.py --sizes 100000 --bm25s      # the library alternative

Real corpora are read from ready-built indexes (/work/idx/NAME, read only). Recombined corpora: each document is
as many paragraphs as a random MDN article has, drawn at random (seeded) from all MDN paragraphs and joined. Their
TF-IDF is computed from per-paragraph term counts (a document's counts are the sum of its paragraphs'), with the
published configuration of store/lexical.py (stop words, min_df 2, max_df 0.5, sublinear TF, smooth IDF, l2 rows):
`--verify N` checks that this equals LexicalIndex.build on the joined texts of N documents. Queries are stored
rows (a query by id), k = 201 (the ranker's candidates + 1). Prints per corpus: ms per query (median, p95) of both,
the speed-up (ratio of medians, measured in the same run), exactness (identical top-k sets; largest score
difference) and the share of the query terms' postings read.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender.store.lexical import TEXT_LIMIT, TOKEN_PATTERN, normalise_apostrophes  # noqa: E402
from recommender.store.lexindex import LexicalIndex  # noqa: E402
from recommender.store.lextopk import PostingsTopK  # noqa: E402

MDN = Path("/work/shared/corpora/mdn/articles.jsonl")


def paragraphs_of(path: Path) -> tuple[list[str], np.ndarray]:
    """Every non-empty paragraph of the corpus, and each article's paragraph count."""
    pool, counts = [], []
    for line in path.open(encoding="utf-8"):
        parts = [p.strip() for p in json.loads(line)["text"].split("\n\n") if p.strip()]
        pool.extend(parts)
        counts.append(max(1, len(parts)))
    return pool, np.array(counts)


def recombined(n: int, pool: list[str], counts: np.ndarray, seed: int = 0):
    """(docs x paragraphs selection matrix): n documents of random paragraphs, as many as a random MDN article
    has, up to TEXT_LIMIT characters joined (so that no text is cut, as lexical_document would cut it)."""
    from scipy import sparse

    rng = np.random.default_rng(seed)
    lengths = rng.choice(counts, n)
    picks = rng.integers(0, len(pool), int(lengths.sum()))
    indptr = np.concatenate(([0], np.cumsum(lengths)))
    chars = np.array([len(p) + 2 for p in pool])[picks]
    within = np.cumsum(chars) - np.repeat(np.cumsum(chars)[indptr[:-1]] - chars[indptr[:-1]], lengths)
    keep = (within <= TEXT_LIMIT) | (np.arange(len(picks)) == np.repeat(indptr[:-1], lengths))  # one at least
    lengths = np.add.reduceat(keep, indptr[:-1]).astype(np.int64)
    indptr = np.concatenate(([0], np.cumsum(lengths)))
    return sparse.csr_matrix((np.ones(int(keep.sum()), np.float32), picks[keep], indptr), shape=(n, len(pool)))


def texts_of(selection, pool: list[str]) -> list[str]:
    return ["\n\n".join(pool[j] for j in selection.indices[selection.indptr[i]:selection.indptr[i + 1]])
            for i in range(selection.shape[0])]


def paragraph_counts(pool: list[str]):
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(stop_words="english", token_pattern=TOKEN_PATTERN, dtype=np.float32)
    counts = vectorizer.fit_transform([normalise_apostrophes(p) for p in pool]).tocsc()
    return counts, [str(t) for t in vectorizer.get_feature_names_out()]


def tfidf_from_counts(selection, counts, vocabulary):
    """fit_tfidf's matrix for the joined documents, from paragraph counts (see the module's docstring)."""
    from scipy import sparse

    docs = (selection @ counts).tocsr()
    n = docs.shape[0]
    df = np.bincount(docs.indices, minlength=docs.shape[1])
    keep = np.flatnonzero((df >= 2) & (df <= 0.5 * n))
    docs = docs[:, keep].tocsr()
    idf = (np.log((1 + n) / (1 + df[keep])) + 1).astype(np.float32)
    docs.data = (1 + np.log(docs.data)).astype(np.float32)
    docs = docs.multiply(idf).tocsr().astype(np.float32)
    norms = np.sqrt(np.asarray(docs.multiply(docs).sum(axis=1)).ravel())
    docs = sparse.diags((1 / np.where(norms > 0, norms, 1)).astype(np.float32)) @ docs
    return docs.tocsr().astype(np.float32), [vocabulary[j] for j in keep], idf


def lexical_for(tfidf, vocabulary, idf) -> LexicalIndex:
    from scipy import sparse

    n = tfidf.shape[0]
    return LexicalIndex(tfidf, vocabulary, idf, sparse.csr_matrix((n, n), dtype=np.float32))


def best_of(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best of a full row (argpartition, every tie of the k-th, then ties by lower row)."""
    kth = np.partition(scores, len(scores) - min(k, len(scores)))[len(scores) - min(k, len(scores))]
    top = np.flatnonzero((scores >= kth) & (scores > 0))
    order = np.lexsort((top, -scores[top]))[:k]
    return top[order], scores[top[order]]


def exhaustive_row(topk: PostingsTopK, terms: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A query by id before PostingsTopK (rank/mappedarrays.py, MappedLexical.tfidf_rows): every posting of the
    query's terms added into a full row."""
    begins = np.asarray(topk.indptr[terms], dtype=np.int64)
    lengths = np.asarray(topk.indptr[terms + 1], dtype=np.int64) - begins
    at = np.repeat(begins - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths) + np.arange(lengths.sum())
    out = np.zeros(topk.n_docs, dtype=np.float32)
    np.add.at(out, np.asarray(topk.indices[at], dtype=np.int64), topk.data[at] * np.repeat(weights, lengths))
    return out


def measure(name: str, lexical: LexicalIndex, queries: int, k: int, seed: int, truncate=(),
            block: int = 256) -> dict:
    """Per query: PostingsTopK; the batch's block product (LexicalIndex.tfidf_rows on `block` rows at once, then
    argpartition; its time divided by the rows); a query by id's exhaustive accumulation."""
    tfidf = lexical.tfidf
    started = time.perf_counter()
    postings = PostingsTopK.from_matrix(tfidf)
    maxima = postings.term_maxima()
    built = time.perf_counter() - started
    topk = PostingsTopK(postings.indptr, postings.indices, postings.data, postings.n_docs, maxima)
    lexical.tfidf_rows(np.array([0]))  # the transposed matrix, made once, outside the timings
    rows = np.random.default_rng(seed).choice(tfidf.shape[0], min(queries, tfidf.shape[0]), replace=False)
    lengths = np.diff(topk.indptr)
    wanted, block_s = [], 0.0
    for start in range(0, len(rows), block):
        started = time.perf_counter()
        full = lexical.tfidf_rows(rows[start:start + block])
        wanted.extend(best_of(scores, k) for scores in full)
        block_s += time.perf_counter() - started
        del full
    exhaustive_ms, topk_ms, differ, worst, total = [], [], 0, 0.0, 0
    for row, (want, want_scores) in zip(rows, wanted):
        span = slice(tfidf.indptr[row], tfidf.indptr[row + 1])
        terms, weights = tfidf.indices[span].astype(np.int64), tfidf.data[span]
        total += int(lengths[terms].sum())
        started = time.perf_counter()
        best_of(exhaustive_row(topk, terms, weights), k)
        exhaustive_ms.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        got, got_scores = topk.top_k(terms, weights, k)
        topk_ms.append((time.perf_counter() - started) * 1e3)
        if set(got.tolist()) != set(want.tolist()):
            differ += 1
        elif len(got):
            worst = max(worst, float(np.abs(got_scores - want_scores).max()))
    read = topk.postings_read
    truncated = {}
    for m in truncate:  # a MoreLikeThis-style query: only the m heaviest terms (not exact: recall of the exact top-k)
        spent, recall = [], []
        for row, (want, _) in zip(rows, wanted):
            span = slice(tfidf.indptr[row], tfidf.indptr[row + 1])
            heaviest = np.argsort(-tfidf.data[span], kind="stable")[:m]
            started = time.perf_counter()
            got, _ = topk.top_k(tfidf.indices[span][heaviest].astype(np.int64), tfidf.data[span][heaviest], k)
            spent.append((time.perf_counter() - started) * 1e3)
            recall.append(len(set(got.tolist()) & set(want.tolist())) / max(1, len(want)))
        truncated[f"heaviest_{m}_terms"] = {"ms_median": round(float(np.median(spent)), 2),
                                            f"recall_of_exact_top{k}": round(float(np.mean(recall)), 3)}
    # what the two-stage ranker uses for a query whose lists hold more than EXACT_POSTINGS postings: the heads of
    # impact-ordered lists (ImpactTopK, a bounded read), then the exact cosines of what it found
    from recommender.rank.candidates import IMPACT_BUDGET
    from recommender.store.lextopk import ImpactTopK, impact_order

    started = time.perf_counter()
    impact = ImpactTopK(topk.indptr, *impact_order(topk.indptr, topk.indices, topk.data), topk.n_docs, IMPACT_BUDGET)
    ordered_s = time.perf_counter() - started
    spent, cpu, recall = [], [], {k: [], 50: [], 20: []}
    for row, (want, _) in zip(rows, wanted):
        span = slice(tfidf.indptr[row], tfidf.indptr[row + 1])
        started, started_cpu = time.perf_counter(), time.process_time()
        got, _, _ = impact.top_k(tfidf.indices[span].astype(np.int64), tfidf.data[span], k)
        spent.append((time.perf_counter() - started) * 1e3)
        cpu.append((time.process_time() - started_cpu) * 1e3)
        for top in recall:  # of the exact top k, and of its best 50 and 20
            recall[top].append(len(set(got.tolist()) & set(want[:top].tolist())) / max(1, len(want[:top])))
    truncated["impact_heads"] = {"budget": IMPACT_BUDGET, "ms_median": round(float(np.median(spent)), 2),
                                 "ms_p95": round(float(np.percentile(spent, 95)), 2),
                                 "cpu_ms_median": round(float(np.median(cpu)), 2),
                                 "cpu_ms_mean": round(float(np.mean(cpu)), 2),
                                 f"recall_of_exact_top{k}": round(float(np.mean(recall[k])), 3),
                                 "recall_of_exact_top50": round(float(np.mean(recall[50])), 3),
                                 "recall_of_exact_top20": round(float(np.mean(recall[20])), 3),
                                 "impact_order_s": round(ordered_s, 1)}
    e, t = np.array(exhaustive_ms), np.array(topk_ms)
    per_row = block_s * 1e3 / len(rows)
    out = {"corpus": name, "docs": tfidf.shape[0], "nnz": int(tfidf.nnz), "queries": len(rows),
           "postings_per_query": int(total / len(rows)),
           "block_product_ms_per_row": round(per_row, 2),
           "exhaustive_ms_median": round(float(np.median(e)), 2),
           "exhaustive_ms_p95": round(float(np.percentile(e, 95)), 2),
           "topk_ms_median": round(float(np.median(t)), 2), "topk_ms_p95": round(float(np.percentile(t, 95)), 2),
           "speedup_vs_block_product": round(float(per_row / np.median(t)), 2),
           "speedup_vs_exhaustive": round(float(np.median(e) / np.median(t)), 2),
           "topk_sets_differing": differ, "max_score_difference": worst,
           "postings_read_share": round(read / max(1, total), 3),
           "term_max_s": round(built, 2), **truncated}
    print(json.dumps(out), flush=True)
    return out


def real(name: str) -> LexicalIndex:
    folder = Path("/work/idx") / name
    return LexicalIndex.load(Path(glob.glob(str(folder / "lexical-*.npz"))[0]),
                             Path(glob.glob(str(folder / "lexicon-*.json"))[0]))


def verify(n: int, pool, counts, vocab_counts, seed: int) -> None:
    selection = recombined(n, pool, counts, seed)
    mine, vocabulary, _ = tfidf_from_counts(selection, *vocab_counts)
    texts = texts_of(selection, pool)
    built = LexicalIndex.build([str(i) for i in range(n)], [("", "", t) for t in texts])
    same_vocabulary = built.vocabulary == vocabulary
    diff = abs(built.tfidf - mine).max() if same_vocabulary else float("nan")
    print(json.dumps({"verify_docs": n, "same_vocabulary": same_vocabulary, "max_abs_difference": float(diff),
                      "longest_text_chars": max(len(t) for t in texts)}), flush=True)


def bm25s_recall(selection, pool, lexical: LexicalIndex, queries: int, k: int, seed: int) -> None:
    """bm25s (BM25 over its own tokens, queried with the article's text): speed, and recall of the exact
    TF-IDF top-k."""
    import bm25s

    texts = texts_of(selection, pool)
    started = time.perf_counter()
    tokens = bm25s.tokenize(texts, stopwords="en", show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    built = time.perf_counter() - started
    rows = np.random.default_rng(seed).choice(len(texts), queries, replace=False)
    ms, recalls = [], []
    topk = PostingsTopK.from_matrix(lexical.tfidf)
    tfidf = lexical.tfidf
    for row in rows:
        query = bm25s.tokenize([texts[row]], stopwords="en", show_progress=False, return_ids=False)
        started = time.perf_counter()
        found, _ = retriever.retrieve(query, k=k, show_progress=False, n_threads=1)
        ms.append((time.perf_counter() - started) * 1e3)
        span = slice(tfidf.indptr[row], tfidf.indptr[row + 1])
        exact, _ = topk.top_k(tfidf.indices[span], tfidf.data[span], k)
        recalls.append(len(set(found[0].tolist()) & set(exact.tolist())) / max(1, len(exact)))
    print(json.dumps({"library": f"bm25s {bm25s.__version__}", "docs": len(texts), "index_build_s": round(built, 1),
                      "ms_median": round(float(np.median(ms)), 2), "ms_p95": round(float(np.percentile(ms, 95)), 2),
                      f"recall_of_exact_tfidf_top{k}": round(float(np.mean(recalls)), 3)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", nargs="*", default=[], help="ready-built indexes under /work/idx")
    parser.add_argument("--sizes", nargs="*", type=int, default=[100000], help="recombined MDN corpora")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=201)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verify", type=int, default=0, help="check the recombined TF-IDF on N documents")
    parser.add_argument("--bm25s", action="store_true", help="also bm25s on the recombined corpora")
    parser.add_argument("--saved", nargs="*", default=[], help="recombined TF-IDF matrices saved by --save")
    parser.add_argument("--truncate", nargs="*", type=int, default=[],
                        help="also query with only the M heaviest terms (recall of the exact top-k)")
    parser.add_argument("--save", help="folder: save each recombined TF-IDF matrix there (scipy .npz)")
    args = parser.parse_args()
    for name in args.real:
        measure(name, real(name), args.queries, args.k, args.seed, args.truncate)
    for path in args.saved:
        from scipy import sparse

        tfidf = sparse.load_npz(path).tocsr()
        measure(Path(path).stem, lexical_for(tfidf, [""] * tfidf.shape[1], np.ones(tfidf.shape[1])), args.queries,
                args.k, args.seed, args.truncate)
    if not (args.sizes or args.verify):
        return
    pool, counts = paragraphs_of(MDN)
    vocab_counts = paragraph_counts(pool)
    if args.verify:
        verify(args.verify, pool, counts, vocab_counts, args.seed)
    for n in args.sizes:
        started = time.perf_counter()
        selection = recombined(n, pool, counts, args.seed)
        tfidf, vocabulary, idf = tfidf_from_counts(selection, *vocab_counts)
        print(json.dumps({"recombined_docs": n, "tfidf_s": round(time.perf_counter() - started, 1),
                          "terms": len(vocabulary), "nnz": int(tfidf.nnz)}), flush=True)
        if args.save:
            from scipy import sparse

            sparse.save_npz(Path(args.save) / f"mdn-recombined-{n}.npz", tfidf, compressed=False)
        lexical = lexical_for(tfidf, vocabulary, idf)
        measure(f"mdn-recombined-{n}", lexical, args.queries, args.k, args.seed, args.truncate)
        if args.bm25s:
            bm25s_recall(selection, pool, lexical, min(args.queries, 100), args.k - 1, args.seed)


if __name__ == "__main__":
    main()
