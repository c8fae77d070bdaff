"""Probe (issue 23): does self-supervised in-domain tuning of the embedding model lift the default ranking?

No curated list is read in training, so it would serve every site (with or without lists) and every new article.
For each corpus the packaged all-MiniLM-L6-v2 (sentence-transformers, PyTorch fp32, CPU, offline) is tuned for
`--epochs` with MultipleNegativesRankingLoss (in-batch negatives, no article twice in a batch) on pairs made from
the site's own articles only:

  title    (the article's title, one of its body windows picked at random)
  next     (a body window, the next window of the same article)

(body windows as `embed.prepare` cuts them, without the "Title: " prefix the index puts in front of each, which
would make the title pair a string match). `--pairs N`: N pairs of each kind per article (default 1). Every
article of the corpus is used; the gold lists are read only to score.

The corpus is then embedded exactly as the index embeds it (`embed.vectorize`: the head and every window; the
article vector from the head and the spread windows), once with the untuned model and once with the tuned one,
both through sentence-transformers in fp32, so the comparison is like for like. Each is scored against the
curated gold by

  dense    the article vectors' cosine alone, the whole corpus (`DenseScorer`, as evaluate's `dense` row)
  default  the default hybrid ranking (dense, window, lexical and mention z-scores over the index's own lexical
           index) with these article AND window vectors, ordered by the link policy exactly as evaluate's `system`
           row (`PolicyScorer` with the index's ranker replaced by one over these vectors)

next to `evaluate`'s own rows on the stored (OpenVINO bf16) vectors: system, dense, TF-IDF, BM25. The script checks
that its own default path over the stored vectors reproduces `system`.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 PYTHONPATH=$PWD python scripts/probe_selfsup.py --cache DIR \
        --corpus python_docs=INDEX=GOLD [--corpus NAME=INDEX=GOLD ...] [--threads 2] [--epochs 1] [--lr 2e-5]

Memory: tuning at batch 32 (eager attention, 256 word pieces) peaks at about 9 GB resident, at batch 16 about
half; two runs at batch 32 side by side were killed for memory on the 23 GB shared machine.

Vectors and tuned models are kept in `--cache` (plain .npy files and a sentence-transformers model directory;
reused by a rerun with the same settings). The index is only read. A table on stdout, progress on stderr; figures
in docs/ranking.md ("Self-supervised tuning of the embedding model").
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from probe_finetune import TunedEmbedder, load_model  # noqa: E402

from recommender import Index  # noqa: E402
from recommender.embed.embedder import packaged_model_path  # noqa: E402
from recommender.embed.prepare import Preparation, prepare  # noqa: E402
from recommender.embed.vectorize import vectorize  # noqa: E402
from recommender.evaluate.evaluation import DenseScorer, PolicyScorer, evaluate_index, rank_system  # noqa: E402
from recommender.evaluate.gold import load_gold_jsonl  # noqa: E402
from recommender.evaluate.metrics import gold_in_index  # noqa: E402
from recommender.ingest.article import Article  # noqa: E402
from recommender.rank.policy import TARGETS, Policy  # noqa: E402
from recommender.rank.ranking import HybridRanker  # noqa: E402
from recommender.rank.windows import WindowScores  # noqa: E402

log = logging.getLogger("probe_selfsup")


def body_windows(article: Article, preparation: Preparation) -> list[str]:
    """The article's body windows as the index cuts them, without the title prefix."""
    prepared = prepare(article, preparation)
    prefix = f"{article.title.strip()}: " if preparation.title_in_chunks and article.title.strip() else ""
    return [w[len(prefix):] if prefix and w.startswith(prefix) else w for w in prepared.windows]


def make_pairs(articles: list[Article], preparation: Preparation, per_article: int, seed: int,
               kinds: tuple[str, ...]) -> list[tuple[int, str, str]]:
    """(article row, anchor text, positive text) pairs from the articles' own texts; no list is read."""
    rng = random.Random(seed)
    pairs = []
    for row, article in enumerate(articles):
        windows = body_windows(article, preparation)
        if not windows:
            continue
        for _ in range(per_article):
            if "title" in kinds and article.title.strip():
                pairs.append((row, article.title.strip(), rng.choice(windows)))
            if "next" in kinds and len(windows) > 1:
                i = rng.randrange(len(windows) - 1)
                pairs.append((row, windows[i], windows[i + 1]))
    return pairs


def batches(pairs: list[tuple[int, str, str]], size: int, rng: random.Random):
    """Shuffled batches with no article twice (its other pair would be a false in-batch negative)."""
    pending = pairs[:]
    rng.shuffle(pending)
    while pending:
        batch, seen, rest = [], set(), []
        for pair in pending:
            if len(batch) < size and pair[0] not in seen:
                batch.append(pair)
                seen.add(pair[0])
            else:
                rest.append(pair)
        yield batch
        pending = rest


def tune(pairs, epochs: int, batch_size: int, lr: float, seed: int):
    """MultipleNegativesRankingLoss over the pairs, a plain PyTorch loop as probe_finetune's (AdamW, no warmup)."""
    import torch
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    torch.manual_seed(seed)
    model = load_model()
    loss_fn = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = random.Random(seed)
    steps, losses = 0, []
    model.train()
    for _ in range(epochs):
        for batch in batches(pairs, batch_size, rng):
            if len(batch) < 2:
                continue
            anchors = model.preprocess([a for _, a, _ in batch])
            positives = model.preprocess([p for _, _, p in batch])
            loss = loss_fn([anchors, positives], None)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            losses.append(loss.item())
    model.eval()
    return model, steps, losses


def embedded(cache: Path, name: str, articles, preparation, model_fn) -> tuple[np.ndarray, object, dict]:
    """Article vectors and a WindowScores over the window vectors, embedded as the index does (cached)."""
    files = [cache / f"{name}.{part}.npy" for part in ("vectors", "windows", "offsets")]
    if all(f.exists() for f in files):
        vectors, windows, offsets = (np.load(f, allow_pickle=False) for f in files)
        return vectors, WindowScores.from_vectors(windows.astype(np.float32), offsets), {"cached": True}
    embedder = model_fn()
    t0, c0 = time.perf_counter(), time.process_time()
    out: list = []
    vectors, _, stats = vectorize(articles, embedder, preparation, None, progress=False, windows=out)
    cost = {"texts": stats.texts, "cpu_s": round(time.process_time() - c0, 1),
            "wall_s": round(time.perf_counter() - t0, 1), "load": [round(x, 2) for x in os.getloadavg()]}
    for f, array in zip(files, (vectors, out[0].vectors, out[0].offsets)):
        np.save(f, array, allow_pickle=False)
    return vectors, WindowScores.from_vectors(out[0].vectors.astype(np.float32), out[0].offsets), cost


def figures(result) -> tuple[float, float]:
    return result.overall["recall@10"], result.overall["mrr"]


def score_vectors(index, policy, queries, gold, ids, vectors, windows) -> dict[str, tuple[float, float]]:
    """dense and default (the hybrid ranking over these vectors, ordered by the link policy as `system`)."""
    dense = rank_system(DenseScorer(vectors, name="dense"), queries, gold, ids, ks=(10,))
    ranker = HybridRanker(vectors, index.lexical, policy.ranking, tag_pool=index.tag_pool(), windows=windows)
    index._rankers = {(policy.ranking, False): ranker}  # what PolicyScorer.ranker() asks for (no learned model)
    system = rank_system(PolicyScorer(index, policy), queries, gold, ids, ks=(10,))
    index._rankers = {}
    return {"dense": figures(dense), "default": figures(system)}


def run_corpus(name: str, index_dir: str, gold_path: str, args, cache: Path) -> dict:
    preparation = Preparation()
    report: dict = {"corpus": name}
    with Index.open(index_dir) as index:
        assert index.learned_model(Policy()) is None, f"{index_dir}: has a learned model; use an index without"
        policy = Policy().with_links(targets=TARGETS)  # as evaluate_index does
        gold_ids = load_gold_jsonl(gold_path)
        t0 = time.perf_counter()
        ev = evaluate_index(index, gold_ids, baselines=("tfidf", "bm25"), dense=True, learned=False,
                            overrides=False, policy=policy)
        report["evaluate"] = {s.system: figures(s) for s in ev.systems}
        log.info("%s evaluate (%.0f s): %s", name, time.perf_counter() - t0, report["evaluate"])
        ids = index.store.ids()
        row = {x: i for i, x in enumerate(ids)}
        kept, _ = gold_in_index(gold_ids, row)
        queries = [row[q] for q in sorted(kept)]
        gold = {row[q]: [row[g] for g in kept[q]] for q in kept}
        articles = [Article(id=i, title=t, excerpt=e or "", body=b or "")
                    for i, (t, e, b) in zip(ids, index.store.texts())]
        same = sum(prepare(a, preparation).content_hash(preparation) == h
                   for a, (_, h) in zip(articles, index.store.hashes()))
        report.update(articles=len(ids), same_texts=same, queries=len(queries))
        stored = np.ascontiguousarray(index.vectors.vectors(), dtype=np.float32)
        check = score_vectors(index, policy, queries, gold, ids, stored, index.window_scores())
        assert np.allclose(check["default"], report["evaluate"]["system"]), (check, report["evaluate"]["system"])
        assert np.allclose(check["dense"], report["evaluate"]["dense"]), (check, report["evaluate"]["dense"])
        if args.backend == "openvino":  # the index's own vectors: the packaged weights through OpenVINO
            assert index.manifest.model.get("backend") == "openvino", index.manifest.model
            report["untuned_embed"] = "the index's stored vectors (OpenVINO)"
            report["untuned"] = check
        else:
            vec, win, report["untuned_embed"] = embedded(cache, f"{name}.untuned", articles, preparation,
                                                         lambda: TunedEmbedder(load_model(), "untuned"))
            report["untuned"] = score_vectors(index, policy, queries, gold, ids, vec, win)
        log.info("%s untuned %s %s", name, report["untuned_embed"], report["untuned"])
        tag = f"{name}.tuned-e{args.epochs}-lr{args.lr:g}-b{args.batch_size}-p{args.pairs}-{'+'.join(args.kinds)}-s{args.seed}"
        model_dir = cache / tag

        def tuned_model():
            if (model_dir / "config.json").exists():
                from sentence_transformers import SentenceTransformer

                return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
            pairs = make_pairs(articles, preparation, args.pairs, args.seed, tuple(args.kinds))
            t0, c0 = time.perf_counter(), time.process_time()
            model, steps, losses = tune(pairs, args.epochs, args.batch_size, args.lr, args.seed)
            report["tune"] = {"pairs": len(pairs), "steps": steps, "cpu_s": round(time.process_time() - c0, 1),
                              "wall_s": round(time.perf_counter() - t0, 1), "threads": args.threads,
                              "load": [round(x, 2) for x in os.getloadavg()],
                              "loss_first_last10": [round(float(np.mean(losses[:10])), 3),
                                                    round(float(np.mean(losses[-10:])), 3)]}
            log.info("%s tuned: %s", name, report["tune"])
            model.save(str(model_dir))
            # sentence-transformers 6 writes the pooling config in a newer form the OpenVINO backend does not read
            # (it falls back to PyTorch); the pooling is untouched by tuning, so the packaged model's is kept
            shutil.copy(packaged_model_path() / "1_Pooling" / "config.json", model_dir / "1_Pooling" / "config.json")
            (cache / f"{tag}.tune.json").write_text(json.dumps(report["tune"]) + "\n")
            return model

        if args.backend == "openvino":  # embedded as the product would: the saved folder through OpenVINO
            def tuned_embedder():
                if not (model_dir / "config.json").exists():
                    tuned_model()  # tuned and saved
                from recommender.embed.embedder import get_embedder

                return get_embedder(str(model_dir), backend="openvino")

            vec, win, report["tuned_embed"] = embedded(cache, f"{tag}.openvino", articles, preparation,
                                                       tuned_embedder)
        else:
            vec, win, report["tuned_embed"] = embedded(cache, tag, articles, preparation,
                                                       lambda: TunedEmbedder(tuned_model(), tag))
        if "tune" not in report and (cache / f"{tag}.tune.json").exists():
            report["tune"] = json.loads((cache / f"{tag}.tune.json").read_text())
        report["tuned"] = score_vectors(index, policy, queries, gold, ids, vec, win)
        log.info("%s tuned %s %s", name, report["tuned_embed"], report["tuned"])
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", action="append", required=True, help="NAME=INDEX=GOLD (repeat)")
    p.add_argument("--cache", required=True, help="folder for the vectors and tuned models (reused)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--pairs", type=int, default=1, help="pairs of each kind per article")
    p.add_argument("--kinds", nargs="+", default=["title", "next"], choices=["title", "next"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads for tuning and embedding")
    p.add_argument("--backend", choices=["openvino", "torch-fp32"], default="openvino",
                   help="embed the tuned model through OpenVINO (as the product would; untuned = the index's stored "
                        "vectors, made the same way) or sentence-transformers fp32 (untuned re-embedded the same way)")
    p.add_argument("--json", help="also write the whole report here")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RECOMMENDER_MODELS", str(cache / "openvino"))  # the conversions, not the user's cache
    os.environ.setdefault("RECOMMENDER_OPENVINO_THREADS", str(args.threads))
    reports = [run_corpus(*spec.split("=", 2), args=args, cache=cache) for spec in args.corpus]
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=1) + "\n")
    print("| corpus | dense untuned | dense tuned | default untuned | default tuned | default stored (evaluate) "
          "| TF-IDF | BM25 | tuned default / best lexical |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in reports:
        e = r["evaluate"]
        best = max(e["tfidf"][0], e["bm25"][0])
        cell = lambda f: f"{f[0]:.3f} / {f[1]:.3f}"  # noqa: E731
        print(f"| {r['corpus']} ({r['queries']}) | {cell(r['untuned']['dense'])} | {cell(r['tuned']['dense'])} | "
              f"{cell(r['untuned']['default'])} ({r['untuned']['default'][0] / best:.3f}x) | "
              f"{cell(r['tuned']['default'])} ({r['tuned']['default'][0] / best:.3f}x) | {cell(e['system'])} | "
              f"{cell(e['tfidf'])} | {cell(e['bm25'])} | {r['tuned']['default'][0] / best:.3f}x |")
        print(f"  {r['corpus']}: tune {r.get('tune')}; embed untuned {r['untuned_embed']}, tuned {r['tuned_embed']}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
