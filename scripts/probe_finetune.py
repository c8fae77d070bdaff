"""Probe (issue 12, optional part): does fine-tuning the embedding model on the curated pairs pay?

For each of the project's cross-validation folds over the curated queries (training.assign_folds, the same seed
and fold count as `recommender evaluate`), the packaged all-MiniLM-L6-v2 (sentence-transformers, PyTorch fp32,
CPU, offline) is fine-tuned with MultipleNegativesRankingLoss on (query article, curated related article) pairs
of the TRAINING folds only; the whole corpus is re-embedded with that model exactly as the index is
(embed.prepare / embed.vectorize: head + up to 8 body windows, combined); the held-out fold's queries are then
ranked by

  dense    the article vectors alone, the whole corpus (self excluded)
  default  the hybrid ranking (rank.ranking.HybridRanker over the index's lexical index, the policy's weights),
           within its candidates, before the link policy's steps (as docs/ranking.md reports it)
  learned  the learned ranking under the same k-fold CV (training.cross_validated_candidates) computed with the
           fold's vectors; only the held-out fold's queries are counted (their logistic model is fitted on the
           other folds, whose dense signals come from a model tuned on their own pairs, so it may over-trust dense)

The same is done with the untuned model re-embedded the same way (`untuned`) and with the index's stored vectors
(`stored`, OpenVINO bf16), so the comparison is like for like. Figures are pooled over all queries (each scored
once, by its fold's model), as `evaluate` reports CV. A training text is the article's first body window as
prepare() makes it ("Title: first 150 words"; the head when there is no body).

    HF_HUB_OFFLINE=1 PYTHONPATH=$PWD python scripts/probe_finetune.py --index /work/idx/pydocs \
        --gold /work/shared/corpora/python_docs/gold.jsonl --epochs 1 > /tmp/ft.json

Reads the index only (opened without writing); results as JSON on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from recommender.embed.embedder import packaged_model_path  # noqa: E402
from recommender.embed.prepare import Preparation, prepare  # noqa: E402
from recommender.embed.vectorize import vectorize  # noqa: E402
from recommender.evaluate.gold import load_gold_jsonl  # noqa: E402
from recommender.evaluate.metrics import gold_in_index, gold_ranks  # noqa: E402
from recommender.evaluate.training import assign_folds, cross_validated_candidates, ranks_in  # noqa: E402
from recommender.ingest.article import Article  # noqa: E402
from recommender.rank.index import Index  # noqa: E402
from recommender.rank.policy import Policy  # noqa: E402
from recommender.rank.wiring import build_ranker  # noqa: E402

log = logging.getLogger("probe_finetune")


class TunedEmbedder:
    """What vectorize needs, over an in-memory SentenceTransformer."""

    def __init__(self, model, name: str):
        self.model, self.name = model, name
        self.fingerprint = name
        self.dimension = model.get_embedding_dimension()

    def encode(self, texts, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        import torch

        with torch.inference_mode():
            vectors = self.model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                                        normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def load_model():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(packaged_model_path()), device="cpu", local_files_only=True)


def batches(pairs: list[tuple[int, int]], size: int, rng: random.Random):
    """Shuffled batches with no article twice in a batch (in-batch negatives must not be positives)."""
    pending = pairs[:]
    rng.shuffle(pending)
    while pending:
        batch, seen, rest = [], set(), []
        for q, r in pending:
            if len(batch) < size and q not in seen and r not in seen:
                batch.append((q, r))
                seen.update((q, r))
            else:
                rest.append((q, r))
        yield batch
        pending = rest


def fine_tune(pairs, texts, epochs: int, batch_size: int, lr: float, seed: int):
    """MultipleNegativesRankingLoss over (query text, related text), a plain PyTorch loop (no datasets/accelerate)."""
    import torch
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    torch.manual_seed(seed)
    model = load_model()
    loss_fn = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = random.Random(seed)
    steps = 0
    model.train()
    for _ in range(epochs):
        for batch in batches(pairs, batch_size, rng):
            if len(batch) < 2:
                continue
            anchors = model.preprocess([texts[q] for q, _ in batch])
            positives = model.preprocess([texts[r] for _, r in batch])
            loss = loss_fn([anchors, positives], None)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
    model.eval()
    return model, steps


def score(vectors, index, gold, queries, policy, seed, folds, learned: bool) -> dict[int, dict[str, list[float]]]:
    """Ranks of each query's gold under dense / default / learned with these vectors."""
    out: dict[int, dict[str, list[float]]] = {q: {} for q in queries}
    sims = vectors[queries] @ vectors.T
    for i, q in enumerate(queries):
        sims[i, q] = -np.inf
        out[q]["dense"] = [float(r) for r in gold_ranks(sims[i].astype(np.float64), gold[q])]
    ranker = build_ranker(vectors, index.data.lexical, policy.ranking, features=index.data.article_features(),
                          tagged=index.data.tagged())
    for cand in ranker.score_rows(np.array(queries)):
        out[cand.query]["default"] = ranks_in(cand.rows, cand.score, gold[cand.query])
    if learned:
        index._rankers = {(policy.ranking, False): ranker}  # the CV's default ranking over these vectors
        cands, _ = cross_validated_candidates(index, policy, gold, folds, seed)
        for q in queries:
            out[q]["learned"] = ranks_in(cands[q].rows, np.arange(len(cands[q].rows), 0, -1), gold[q])
        index._rankers = {}
    return out


def summarise(ranks: dict[int, dict[str, list[float]]], gold) -> dict[str, dict[str, float]]:
    out = {}
    for system in next(iter(ranks.values())):
        qs = [q for q in ranks if system in ranks[q]]
        recall = np.mean([sum(r <= 10 for r in ranks[q][system]) / len(gold[q]) for q in qs])
        mrr = np.mean([1.0 / min(ranks[q][system]) for q in qs])
        out[system] = {"recall@10": round(float(recall), 4), "mrr": round(float(mrr), 4), "queries": len(qs)}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", required=True)
    p.add_argument("--gold", required=True)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--only-folds", type=int, nargs="*", help="run these folds only (default: all)")
    p.add_argument("--no-learned", action="store_true", help="skip the learned ranking")
    p.add_argument("--skip-untuned", action="store_true",
                   help="do not re-embed with the untuned model (on python_docs it equals the stored vectors' figures)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    policy, preparation = Policy(), Preparation()
    with Index.open(args.index) as index:
        ids = index.data.store.ids()
        row_of = {a: r for r, a in enumerate(ids)}
        articles = [Article(id=i, title=t, excerpt=e or "", body=b or "")
                    for i, (t, e, b) in zip(ids, index.data.store.texts())]
        same = sum(prepare(a, preparation).content_hash(preparation) == h
                   for a, (_, h) in zip(articles, index.data.store.hashes()))
        log.info("%d articles, %d with the index's content hash (same texts as the index embedded)", len(ids), same)
        kept, _ = gold_in_index(load_gold_jsonl(args.gold), row_of)
        gold = {row_of[q]: [row_of[r] for r in rel] for q, rel in kept.items()}
        fold_of = assign_folds(sorted(gold), args.folds, args.seed)
        train_text = []
        for a in articles:
            prepared = prepare(a, preparation)
            train_text.append(prepared.chunks[0] if prepared.chunks else prepared.head)
        report: dict = {"articles": len(ids), "same_texts": same, "queries": len(gold),
                        "links": sum(map(len, gold.values())), "settings": vars(args), "folds": []}
        ranks: dict[str, dict] = {"stored": {}, "untuned": {}, "tuned": {}}
        if args.skip_untuned:
            del ranks["untuned"]
        run_learned = not args.no_learned
        stored = np.ascontiguousarray(index.data.vectors.vectors(), dtype=np.float32)
        ranks["stored"] = score(stored, index, gold, sorted(gold), policy, args.seed, args.folds, run_learned)
        log.info("stored vectors: %s", summarise(ranks["stored"], gold))
        if not args.skip_untuned:
            t0, c0 = time.perf_counter(), time.process_time()
            untuned, _, stats = vectorize(articles, TunedEmbedder(load_model(), "untuned"), preparation, None,
                                          progress=False)
            report["untuned_embed"] = {"texts": stats.texts, "cpu_s": round(time.process_time() - c0, 1),
                                       "wall_s": round(time.perf_counter() - t0, 1), "load": os.getloadavg()}
            ranks["untuned"] = score(untuned, index, gold, sorted(gold), policy, args.seed, args.folds, run_learned)
            log.info("untuned re-embedded (%s): %s", report["untuned_embed"], summarise(ranks["untuned"], gold))
        for f in args.only_folds if args.only_folds else range(args.folds):
            held = sorted(q for q in gold if fold_of[q] == f)
            pairs = [(q, r) for q in gold if fold_of[q] != f for r in gold[q]]
            t0, c0 = time.perf_counter(), time.process_time()
            model, steps = fine_tune(pairs, train_text, args.epochs, args.batch_size, args.lr, args.seed + f)
            tune_cpu, tune_wall = time.process_time() - c0, time.perf_counter() - t0
            vectors, _, _ = vectorize(articles, TunedEmbedder(model, f"tuned-{f}"), preparation, None, progress=False)
            embed_cpu, embed_wall = time.process_time() - c0 - tune_cpu, time.perf_counter() - t0 - tune_wall
            fold_ranks = score(vectors, index, gold, held, policy, args.seed, args.folds, run_learned)
            ranks["tuned"].update(fold_ranks)
            entry = {"fold": f, "held_out": len(held), "pairs": len(pairs), "steps": steps,
                     "tune_cpu_s": round(tune_cpu, 1), "tune_wall_s": round(tune_wall, 1),
                     "embed_cpu_s": round(embed_cpu, 1), "embed_wall_s": round(embed_wall, 1),
                     "load": os.getloadavg(), "tuned": summarise(fold_ranks, gold),
                     **({} if args.skip_untuned else
                        {"untuned": summarise({q: ranks["untuned"][q] for q in held}, gold)}),
                     "stored": summarise({q: ranks["stored"][q] for q in held}, gold)}
            report["folds"].append(entry)
            log.info("fold %d: %s", f, json.dumps(entry))
        done = sorted(ranks["tuned"])
        report["pooled"] = {name: summarise({q: ranks[name][q] for q in done}, gold) for name in ranks}
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
