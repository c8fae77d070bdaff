"""Probe (issue 23): list-free signals read from a site's own corpus-level structure (topics of its TF-IDF,
diffusion over its nearest-neighbour graphs, second-order term association), each as one more column of the
learned ranking (`new` and `existing` protocols, as `evaluate`'s `learned, ... (5-fold CV)` rows) and of the
transferable default (leave-one-corpus-out, as scripts/measure_transfer.py).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=$PWD python scripts/probe_topics.py learned --corpus NAME=INDEX=GOLD \
        [--signals lsa100,ppr_dense,...] [--protocols new,existing] [--seed 0]
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=$PWD python scripts/probe_topics.py loco --cache DIR \
        --corpus NAME=INDEX=GOLD [--corpus ...] [--signals ...]

Signals (each a z-score over the query's full row, every other article of the site, as the other z-scores are):

* `lsaK`: cosine in a K-dimensional LSA space (truncated SVD of the site's L2-normalised TF-IDF rows, randomised,
  seed 0; `lsaKsS`: seed S); `lsaE`: the mean z of eight such spaces (K 50, 100, 150, 200 x seeds 0, 1);
* `nmfK`: cosine of K-topic NMF mixtures of the same TF-IDF rows (seed 0);
* `ppr_dense`, `ppr_lex`, `ppr_hyb`: personalised PageRank from the query (restart 0.3, 6 steps) over the site's
  symmetrised 10-nearest-neighbour graph of article vectors / TF-IDF rows / both z-scored and added, edges weighed
  by the cosine, as log(1 + n * mass);
* `cooc2`: second-order TF-IDF similarity, sum over third articles j of cos(q, j) cos(j, c) (the query's terms
  expanded by the terms that occur with them across the site), the j = q and j = c terms left out;
* `profile_lex`: the cosine of the two articles' TF-IDF similarity profiles (their rows of cosines to every
  article, the diagonal left out);
* `heads`: TF-IDF cosine of the two articles' titles and short lines (headings, API names: at most 8 words, not
  ending in a full stop), shared rare heading terms weighing most;
* `title_win`, `win_title`, `title_title`, `title_vec`: the titles embedded alone by the packaged model (the
  default embedder) against the stored windows: the query's best window against the candidate's title, the
  candidate's best window against the query's title, title against title, and the query's article vector against
  the candidate's title ("does one article discuss the other's subject somewhere"; 2026-12-06, later);
* `cocite`: co-citation in the site's mention graph: the cosine of the two articles' in-mention vectors (who names
  them), each naming article weighed by log((1 + n) / (1 + the number of articles it names)).

`learned` builds `training.TrainingSet` and `training.nested_scores` as scripts/probe_prior.py does (with no
signal added it prints `evaluate`'s learned rows); each signal is added alone (and `all`: every one given).
`loco` reads measure_transfer.py's cache (.npz per corpus; the query rows are the gold's queries found in the
index, sorted, as `transfer.collect_corpus` makes them; the script checks the labels against the gold), adds the
signals as features of the shipped configuration (listwise, standardised per query, penalty 3) and prints the
leave-one-corpus-out table. Nothing is written. Figures: docs/ranking.md, "Corpus-structure signals".
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from scipy import sparse

from recommender import Index
from recommender.evaluate import training
from recommender.evaluate.gold import load_gold_jsonl
from recommender.evaluate.metrics import gold_in_index
from recommender.evaluate.training import TrainingSet, nested_scores
from recommender.rank import default_model
from recommender.rank.policy import TARGETS, Policy
from recommender.rank.signaltable import SIGNALS

from probe_prior import Figures, MemoView  # scripts/ (the running script's folder is on the path)

KNN = 10
RESTART, STEPS = 0.3, 6
BLOCK = 1024
HEAD_WORDS = 8


def _normalised(A: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(A, axis=1, keepdims=True)
    return A / np.where(norm > 0, norm, 1.0)


def _lsa(kind: str) -> tuple[int, int]:
    """"lsa100" -> (100, seed 0); "lsa100s2" -> (100, seed 2)."""
    k, _, seed = kind[3:].partition("s")
    return int(k), int(seed or 0)


def _knn_graph(sim_rows, n: int) -> sparse.csr_matrix:
    """The symmetrised KNN graph (max of both directions), edges weighed by the positive similarity, rows
    normalised to sum 1 (a random walk's transitions)."""
    rows, cols, vals = [], [], []
    for a in range(0, n, BLOCK):
        block = np.asarray(sim_rows(np.arange(a, min(n, a + BLOCK))), dtype=np.float64)
        block[np.arange(len(block)), np.arange(a, a + len(block))] = -np.inf
        top = np.argpartition(-block, KNN, axis=1)[:, :KNN]
        rows.append(np.repeat(np.arange(a, a + len(block)), KNN))
        cols.append(top.ravel())
        vals.append(np.maximum(np.take_along_axis(block, top, axis=1).ravel(), 1e-6))
    W = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    W = W.maximum(W.T).tocsr()
    degree = np.asarray(W.sum(axis=1)).ravel()
    return sparse.diags(1.0 / np.where(degree > 0, degree, 1.0)) @ W


def _ppr(P: sparse.csr_matrix, queries: np.ndarray) -> np.ndarray:
    """log(1 + n * mass) of personalised PageRank from each query (rows), a few power steps."""
    n = P.shape[0]
    E = np.zeros((len(queries), n))
    E[np.arange(len(queries)), queries] = 1.0
    R = E.copy()
    PT = P.T.tocsr()
    for _ in range(STEPS):
        R = RESTART * E + (1 - RESTART) * (PT @ R.T).T
    return np.log1p(n * R)


def _heading_space(texts: list[tuple[str, str, str]]) -> sparse.csr_matrix:
    """Each article's title and short lines (headings, API names: at most HEAD_WORDS words, no closing full stop)
    as L2-normalised TF-IDF rows (sublinear term frequency; terms in at least two articles)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = []
    for title, _, body in texts:
        lines = [line.strip() for line in body.splitlines()]
        heads = [line for line in lines if line and len(line.split()) <= HEAD_WORDS and not line.endswith(".")]
        docs.append("\n".join([title] + heads))
    vectoriser = TfidfVectorizer(sublinear_tf=True, min_df=2, token_pattern=r"(?u)\b[A-Za-z_][A-Za-z0-9_]+\b")
    return vectoriser.fit_transform(docs).tocsr()


class Structure:
    """A site's corpus-level structure: the matrices each signal's full rows are read from."""

    def __init__(self, index, kinds: list[str]):
        T = index.data.lexical.tfidf
        T = sparse.csr_matrix((np.array(T.data, dtype=np.float64), np.array(T.indices), np.array(T.indptr)),
                              shape=T.shape)
        norm = np.sqrt(np.asarray(T.multiply(T).sum(axis=1)).ravel())
        self.T = (sparse.diags(1.0 / np.maximum(norm, 1e-12)) @ T).tocsr()
        self.V = np.asarray(index.ranker(Policy(), learned=False).vectors, dtype=np.float32)
        self.n = self.T.shape[0]
        mentions = index.data.lexical.mentions
        self.mentions = sparse.csr_matrix((np.array(mentions.data, dtype=np.float64), np.array(mentions.indices),
                                           np.array(mentions.indptr)), shape=mentions.shape)
        self.spaces, self.graphs = {}, {}
        for kind in kinds:
            timer = time.time()
            if kind == "lsaE":
                from sklearn.decomposition import TruncatedSVD
                self.ensemble = [_normalised(TruncatedSVD(k, random_state=seed).fit_transform(self.T))
                                 for k in (50, 100, 150, 200) for seed in (0, 1)]
            elif kind == "profile_lex":
                S = np.zeros((self.n, self.n), dtype=np.float32)
                for a in range(0, self.n, BLOCK):
                    S[a:a + BLOCK] = (self.T[a:a + BLOCK] @ self.T.T).toarray()
                np.fill_diagonal(S, 0.0)
                S /= np.maximum(np.linalg.norm(S, axis=1, keepdims=True), 1e-12)
                self.profile = S
            elif kind.startswith("lsa"):
                from sklearn.decomposition import TruncatedSVD
                k, seed = _lsa(kind)
                self.spaces[kind] = _normalised(TruncatedSVD(k, random_state=seed).fit_transform(self.T))
            elif kind.startswith("nmf"):
                from sklearn.decomposition import NMF
                self.spaces[kind] = _normalised(NMF(int(kind[3:]), init="nndsvda", random_state=0,
                                                    max_iter=300).fit_transform(self.T))
            elif kind == "heads":
                self.heads = _heading_space(index.data.store.texts())
            elif kind in ("title_win", "win_title", "title_title", "title_vec"):
                if not hasattr(self, "titles"):
                    from recommender.embed.embedder import get_embedder
                    titles = [t or "" for t, _, _ in index.data.store.texts()]
                    self.titles = np.asarray(get_embedder().encode(titles), dtype=np.float32)
                    ws = index.data.window_scores(keep_copy=True)
                    self.W = ws.dequantised()
                    self.W /= np.maximum(np.linalg.norm(self.W, axis=1, keepdims=True), 1e-12)
                    self.offsets = ws.offsets
            elif kind.startswith("ppr_"):
                self.graphs[kind] = _knn_graph(self._sim(kind[4:]), self.n)
            print(f"  {kind}: {time.time() - timer:.1f} s", file=sys.stderr, flush=True)

    def _sim(self, source: str):
        dense = lambda rows: self.V[rows] @ self.V.T
        lexical = lambda rows: (self.T[rows] @ self.T.T).toarray()
        if source == "dense":
            return dense
        if source == "lex":
            return lexical
        return lambda rows: _z(dense(rows), rows) + _z(lexical(rows), rows)

    def rows(self, kind: str, queries: np.ndarray) -> np.ndarray:
        """The signal's full rows (queries x n), before the z-score."""
        if kind in self.spaces:
            U = self.spaces[kind]
            return U[queries] @ U.T
        if kind in self.graphs:
            return _ppr(self.graphs[kind], queries)
        if kind == "lsaE":
            return np.mean([_z(U[queries] @ U.T, queries) for U in self.ensemble], axis=0)
        if kind == "profile_lex":
            return self.profile[queries] @ self.profile.T
        if kind == "heads":
            return (self.heads[queries] @ self.heads.T).toarray()
        if kind == "title_win":  # the query's best passage against each candidate's title
            out = np.empty((len(queries), self.n), dtype=np.float64)
            for i, q in enumerate(queries):
                out[i] = (self.W[self.offsets[q]:self.offsets[q + 1]] @ self.titles.T).max(axis=0)
            return out
        if kind == "win_title":  # each candidate's best passage against the query's title
            sims = self.titles[queries] @ self.W.T  # queries x windows
            return np.maximum.reduceat(sims, self.offsets[:-1], axis=1)
        if kind == "title_title":
            return self.titles[queries] @ self.titles.T
        if kind == "title_vec":  # the query's article vector against each candidate's title
            return self.V[queries] @ self.titles.T
        if kind == "cocite":
            if not hasattr(self, "cited"):
                M = sparse.csr_matrix(self.mentions, dtype=np.float64)
                M.data[:] = 1.0
                outdeg = np.asarray(M.sum(axis=1)).ravel()
                weight = np.log((1 + self.n) / (1 + outdeg))  # a page naming everything says little
                C = (sparse.diags(weight) @ M).T.tocsr()  # row c: who names c, each naming page by its weight
                norm = np.sqrt(np.asarray(C.multiply(C).sum(axis=1)).ravel())
                self.cited = (sparse.diags(1.0 / np.maximum(norm, 1e-12)) @ C).tocsr()
            return (self.cited[queries] @ self.cited.T).toarray()
        if kind == "cooc2":
            A = (self.T[queries] @ self.T.T).toarray()
            return (self.T @ (self.T.T @ A.T)).T - 2 * A
        raise ValueError(f"unknown signal {kind!r}")


def _z(values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Each row as z-scores over the row without the query itself."""
    values = np.asarray(values, dtype=np.float64)
    mask = np.ones(values.shape, dtype=bool)
    mask[np.arange(len(queries)), queries] = False
    n = mask.sum(axis=1, keepdims=True)
    mean = np.where(mask, values, 0).sum(axis=1, keepdims=True) / n
    var = np.where(mask, (values - mean) ** 2, 0).sum(axis=1, keepdims=True) / n
    return (values - mean) / np.sqrt(np.maximum(var, 1e-18))


def columns(structure: Structure, kinds: list[str], queries: list[int], cand_rows: list[np.ndarray]) -> dict:
    """kind -> each (query, candidate) pair's z-score, the queries' candidates consecutive."""
    out = {k: [] for k in kinds}
    for a in range(0, len(queries), 256):
        qs = np.asarray(queries[a:a + 256])
        for kind in kinds:
            Z = _z(structure.rows(kind, qs), qs)
            out[kind].extend(Z[i, cand_rows[a + i]] for i in range(len(qs)))
    return {k: np.concatenate(v).astype(np.float32) for k, v in out.items()}


def gold_rows(index, gold_path: str) -> dict[int, list[int]]:
    row_of = {x: i for i, x in enumerate(index.data.store.ids())}
    kept, _ = gold_in_index(load_gold_jsonl(gold_path), row_of)
    return {row_of[q]: [row_of[g] for g in r] for q, r in kept.items()}


def learned(args, kinds: list[str]) -> None:
    name, index_dir, gold_path = args.corpus[0].split("=", 2)
    timer = time.time()
    index = Index.open(index_dir)
    policy = Policy().with_links(targets=TARGETS)
    gold = gold_rows(index, gold_path)
    data = TrainingSet(index, policy, gold)
    queries = sorted(gold)
    extra = columns(Structure(index, kinds), kinds, queries, [data.cands[q].rows for q in queries])
    print(f"{name}: {len(gold)} queries, {len(data.y)} pairs ({time.time() - timer:.0f} s)", flush=True)
    for kind, values in extra.items():
        print(f"  {kind}: mean z of curated pairs {values[data.y].mean():+.3f}, of the others "
              f"{values[~data.y].mean():+.3f}", flush=True)
    qs = data.qs
    figures = Figures(index, data, gold, policy)
    variants = {"base": data.X}
    variants.update({k: np.hstack([data.X, v[:, None]]) for k, v in extra.items()})
    if len(kinds) > 1:
        variants["all"] = np.hstack([data.X] + [v[:, None] for v in extra.values()])
    training.OBJECTIVES = ("pointwise", "listwise")
    for protocol in args.protocols.split(","):
        view = MemoView(data.view(protocol))
        for variant, X in variants.items():
            scores, _, chosen, _ = nested_scores(X, data.y, qs, figures.default_rows, gold, 5, args.seed, view)
            f, w = figures.after_policy(scores), figures.within(scores)
            print(f"{name} seed {args.seed} {protocol:8s} {variant:9s} recall@10 / MRR {f['recall@10']:.4f} / "
                  f"{f['mrr']:.4f} (within the candidates {w['recall@10']:.4f}); folds chose {chosen} "
                  f"({time.time() - timer:.0f} s)", flush=True)


def loco(args, kinds: list[str]) -> None:
    from recommender.evaluate.transfer import Config, CorpusData, leave_one_out

    corpora, names = [], [f"x:{k}" for k in kinds]
    for spec in args.corpus:
        name, index_dir, gold_path = spec.split("=", 2)
        data = CorpusData.load(args.cache / f"{name}.npz")
        timer = time.time()
        with Index.open(index_dir) as index:
            gold = gold_rows(index, gold_path)
            queries = sorted(gold)
            assert len(queries) == data.queries, (name, len(queries), data.queries)
            blocks = [data.rows[a:b] for a, b in zip(data.starts[:-1], data.starts[1:])]
            for q, rows, (a, b) in zip(queries, blocks, zip(data.starts[:-1], data.starts[1:])):
                assert np.array_equal(data.y[a:b], np.isin(rows, gold[q])), (name, q)
            extra = columns(Structure(index, kinds), kinds, queries, blocks)
        data.X = np.hstack([data.X] + [extra[k][:, None] for k in kinds])
        corpora.append(data)
        print(f"{name}: {data.queries} queries, signals added ({time.time() - timer:.0f} s)", file=sys.stderr,
              flush=True)
    raw = default_model._raw

    def extended(block, feature_names):  # "x:KIND" is the added column of that kind
        plain = [n for n in feature_names if not n.startswith("x:")]
        base = raw(block, plain)
        cols, i = [], 0
        for n in feature_names:
            if n.startswith("x:"):
                cols.append(block[:, len(SIGNALS) + kinds.index(n[2:])])
            else:
                cols.append(base[:, i])
                i += 1
        return np.stack(cols, axis=1)

    default_model._raw = extended
    shipped = default_model.load_default_model()
    sets = [("shipped", ())] + [(k, (f"x:{k}",)) for k in kinds] + ([("all", tuple(names))] if len(kinds) > 1 else [])
    for label, added in sets:
        config = Config(signals=tuple(shipped.signals) + added, normalise=shipped.normalise, penalty=3.0)
        table = leave_one_out(corpora, config)
        cells = []
        for name, row in table.items():
            best = max(row["tfidf"]["recall@10"], row["bm25"]["recall@10"])
            cells.append(f"{name} {row['transfer']['recall@10']:.4f} / {row['transfer']['mrr']:.4f} "
                         f"({row['transfer']['recall@10'] / best:.3f}x; fixed {row['fixed']['recall@10']:.4f})")
        print(f"LOCO {label:9s}: " + " | ".join(cells), flush=True)
        if added:
            print("    weight of the added signal(s) without each corpus: " + "; ".join(
                f"{name} " + ", ".join(f"{row['weights'][a]:+.3f}" for a in added) for name, row in table.items()),
                flush=True)


def main() -> None:
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("learned", "loco"))
    parser.add_argument("--corpus", action="append", required=True, help="NAME=INDEX=GOLD")
    parser.add_argument("--cache", type=Path, help="loco: measure_transfer.py's cache folder")
    parser.add_argument("--signals", default="lsa100,lsaE,nmf100,ppr_lex,cooc2,profile_lex,cocite")
    parser.add_argument("--protocols", default="new,existing")
    parser.add_argument("--seed", type=int, default=0, help="the fold seed (learned)")
    args = parser.parse_args()
    kinds = [k for k in args.signals.split(",") if k]
    (learned if args.mode == "learned" else loco)(args, kinds)


if __name__ == "__main__":
    main()
