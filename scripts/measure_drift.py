"""How far the related lists of an incremental batch (corpus statistics frozen at the last full rebuild) drift
from a fresh full rebuild as churn grows: the measurement behind the refit threshold (docs/batch.md).

    python scripts/measure_drift.py ../shared/corpora/python_docs/articles.jsonl \
        --gold ../shared/corpora/python_docs/gold.jsonl --cache /work/idx/pydocs/cache --work /tmp/drift-pyd

For each kind of churn and each level (a share of the base corpus), seeded:

* the base: the corpus less a held-out part (`mixed`/`growth`: 25% at random; `section`: every article whose
  id starts with --section, a topic the site did not cover yet), run once through `recommender batch` in full;
* the churned corpus: `mixed` adds, changes and removes a third of the level each; `growth` only adds; `section`
  adds articles of the held-out section. Added articles come from the held-out part. A change keeps a random 70%
  of the article's paragraphs and appends a paragraph of another article (a revision that moves its vector);
* frozen: the base's index and outputs, then one batch on the churned corpus with the refit threshold out of
  reach (IDF, name weights, embedding moments and row statistics of the base; lists ranked incrementally);
* fresh: the base's index (cached vectors) and no list state, one batch with a forced refit (everything new).

Printed per level: two measures of what drifts, taken on the frozen run, the share of lists identical (same
ids, same order), the mean overlap@10 of an article's two lists, and recall@10 against the gold file for both:

* idf: the IDF the frozen vocabulary would get on today's corpus (scikit-learn's smoothed IDF from each term's
  document frequency now) against the frozen IDF: sum of df * |idf_now - idf_frozen| over sum of
  df * idf_frozen. Words outside the frozen vocabulary are not seen. 0 (2e-8) on the corpus it was fitted on.
* dense: the move of the embedding mean along each article's vector, in that article's frozen deviation (the
  unit of its dense z-score), averaged over articles. Vectors come from
--cache (a copy of an index's `cache` folder) so that only changed texts are embedded (once, up front).
Results (one JSON object a level) go to stdout; progress to stderr.

    python scripts/measure_drift.py --summarise RESULTS.jsonl [...]   # the table of docs/batch.md
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("measure_drift")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def revised(record: dict, donor: dict, seed: int) -> dict:
    """A revision: a random 70% of the paragraphs kept (at least one), one paragraph of another article added."""
    rng = random.Random(f"{seed}:{record['id']}")
    paragraphs = [p for p in record.get("text", "").split("\n\n") if p.strip()] or [record.get("title", "")]
    kept = [p for p in paragraphs if rng.random() < 0.7] or paragraphs[:1]
    extra = [p for p in donor.get("text", "").split("\n\n") if len(p) > 80] or [donor.get("title", "")]
    return {**record, "text": "\n\n".join(kept + [rng.choice(extra)])}


class Churn:
    """The base corpus and, per level, the churned corpus of one kind of churn and one seed."""

    def __init__(self, records: list[dict], kind: str, seed: int, section: str | None):
        rng = random.Random(seed)
        order = list(range(len(records)))
        rng.shuffle(order)
        if kind == "section":
            held = [i for i in order if records[i]["id"].startswith(section)]
        else:
            held = order[:len(records) // 4]
        held_set = set(held)
        self.records, self.kind, self.seed = records, kind, seed
        self.base = [i for i in order if i not in held_set]  # base rows in a seeded order: changes take a prefix
        self.held = held
        self.donors = rng.sample(range(len(records)), len(records))

    def level(self, share: float) -> tuple[list[dict], dict]:
        n = round(share * len(self.base))
        if self.kind == "mixed":
            added, removed = round(n / 3), round(n / 3)
            changed = n - added - removed
        else:
            added, removed, changed = n, 0, 0
        added = min(added, len(self.held))
        removed_rows = set(self.base[:removed])
        changed_rows = set(self.base[removed:removed + changed])
        out = []
        for i in sorted(self.base):
            if i in removed_rows:
                continue
            record = self.records[i]
            out.append(revised(record, self.records[self.donors[i]], self.seed) if i in changed_rows else record)
        out += [self.records[i] for i in self.held[:added]]
        return out, {"added": added, "changed": changed, "removed": removed}

    def base_records(self) -> list[dict]:
        return [self.records[i] for i in sorted(self.base)]


def lists(out: Path) -> dict[str, list[str]]:
    return {x["id"]: [r["id"] for r in x["related"]] for x in read_jsonl(out / "related.jsonl")}


def recall_at_10(got: dict[str, list[str]], gold: list[dict]) -> tuple[float, int]:
    """Mean over gold queries in the corpus of |top 10 ∩ gold targets in the corpus| / |gold targets in it|."""
    values = []
    for line in gold:
        targets = {t for t in line.get("related", []) if t in got and t != line["id"]}
        if line["id"] in got and targets:
            values.append(len(targets & set(got[line["id"]][:10])) / len(targets))
    return (float(np.mean(values)) if values else float("nan")), len(values)


def compare(frozen: dict[str, list[str]], fresh: dict[str, list[str]]) -> dict:
    same = overlap = 0.0
    for article, mine in frozen.items():
        theirs = fresh[article]
        same += mine == theirs
        denominator = max(len(mine[:10]), len(theirs[:10]), 1)
        overlap += len(set(mine[:10]) & set(theirs[:10])) / denominator
    return {"identical": same / len(frozen), "overlap@10": overlap / len(frozen)}


def batch(corpus: Path, index: Path, out: Path, embedder, refit: bool) -> dict:
    """One `recommender batch` in this process: refit forces a full lexical fit (and so a full run); otherwise the
    refit threshold ([batch] refit_drift, which the lists' settings key leaves out) is out of reach and every
    statistic stays frozen."""
    from recommender.batch.nightly import run_batch
    from recommender.rank.policy import Policy

    policy = Policy().with_section("batch", refit_drift=0.0 if refit else float("inf"))
    return run_batch(corpus, index, out, policy, embedder=embedder, progress=False, allow_shrink=True)


def idf_shift(tfidf, idf: np.ndarray) -> float:
    """Relative, document-frequency weighted change of the frozen IDF on the corpus whose rows `tfidf` holds."""
    n = tfidf.shape[0]
    if n == 0 or tfidf.shape[1] == 0:
        return 0.0
    df = np.bincount(tfidf.tocsr().indices, minlength=tfidf.shape[1]).astype(np.float64)
    now = np.log((1.0 + n) / (1.0 + df)) + 1.0
    frozen = np.asarray(idf, dtype=np.float64)
    weight = float((df * frozen).sum())
    return float((df * np.abs(now - frozen)).sum() / weight) if weight > 0 else 0.0


def dense_shift(vectors: np.ndarray, mean: np.ndarray, second: np.ndarray) -> float:
    """Mean over articles of the embedding mean's move along each article's vector, in its frozen deviations."""
    if len(vectors) == 0:
        return 0.0
    v = np.asarray(vectors, dtype=np.float64)
    frozen_mean = np.asarray(mean, dtype=np.float64)
    moved = v @ (v.mean(axis=0) - frozen_mean)
    centre = v @ frozen_mean
    var = np.einsum("qd,qd->q", v @ np.asarray(second, dtype=np.float64), v) - centre ** 2
    std = np.sqrt(np.maximum(var, 1e-12))
    return float(np.mean(np.abs(moved) / std))


def drift_of(index: Path, out: Path) -> dict:
    """The two drift statistics for the frozen run's index (TF-IDF rows, frozen IDF) and lists state (moments)."""
    from recommender.batch.incremental import STATE_FILE, load_state
    from recommender.rank.index import Index

    state = load_state(out / STATE_FILE)
    with Index.open(index) as opened:
        vectors = np.ascontiguousarray(opened.data.vectors.vectors(), dtype=np.float32)
        return {"idf": idf_shift(opened.data.lexical.tfidf, opened.data.lexical.idf),
                "dense": dense_shift(vectors, state["mean"], state["second"])}


def prepare_vectors(records: list[dict], churns: list[Churn], top: float, work: Path, embedder) -> None:
    """Embed every changed text of the highest level once, into the shared cache (work/cache)."""
    from recommender.batch.build import read_logged
    from recommender.embed.prepare import Preparation
    from recommender.embed.vector_cache import VectorCache
    from recommender.embed.vectorize import vectorize

    for churn in churns:
        corpus, _ = churn.level(top)
        write_jsonl(work / "changed" / "articles.jsonl", corpus)
        articles = read_logged(work / "changed" / "articles.jsonl").articles
        with VectorCache(work / "cache" / "vectors.sqlite") as cache:
            _, _, stats = vectorize(articles, embedder, Preparation(), cache, progress=False)
        log.info("shared cache (%s): %d embedded, %d reused", churn.kind, stats.embedded, stats.reused)


OVERLAP_MIN = 0.98  # the tolerance: frozen lists within this mean overlap@10 of fresh ones ...
RECALL_LOSS_MAX = 0.005  # ... and recall@10 against gold at most this much lower (about one gold link)


def summarise(paths: list[Path]) -> None:
    """A markdown table of result files (mean over seeds, worst in brackets); how well each drift measure ranks
    the runs by list drift (Spearman correlation with 1 - overlap@10); and for each measure the largest threshold
    under which every run is within the tolerance, with how many runs it leaves frozen (more is better)."""
    rows, seen = [], set()
    for path in paths:
        for row in read_jsonl(path):
            key = (row["kind"], row["seed"], row["added"], row["changed"], row["removed"])
            if key not in seen:  # a section smaller than the level: measured once
                seen.add(key)
                rows.append(row)
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    rows.sort(key=lambda r: (kinds.index(r["kind"]), r["level"], r["seed"]))
    print("| churn kind | level | churn | idf shift | dense shift | identical lists | overlap@10 (worst) "
          "| recall@10 frozen - fresh (worst) | seeds |")
    print("|---|---|---|---|---|---|---|---|---|")
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["kind"], row["level"]), []).append(row)
    for (kind, level), group in groups.items():
        mean = {k: float(np.mean([r[k] for r in group])) for k in ("churn", "idf", "dense", "identical", "overlap@10")}
        loss = [r["recall_frozen"] - r["recall_fresh"] for r in group]
        print(f"| {kind} | {level * 100:g}% | {mean['churn']:.3f} | {mean['idf']:.4f} | {mean['dense']:.4f} "
              f"| {mean['identical']:.3f} | {mean['overlap@10']:.4f} ({min(r['overlap@10'] for r in group):.4f}) "
              f"| {np.mean(loss):+.4f} ({min(loss):+.4f}) | {len(group)} |")

    def rank(values):
        return np.argsort(np.argsort(values)).astype(float)

    def within(r):
        return r["overlap@10"] >= OVERLAP_MIN and r["recall_frozen"] - r["recall_fresh"] >= -RECALL_LOSS_MAX

    drift = rank([1 - r["overlap@10"] for r in rows])
    print(f"\nTolerance: overlap@10 >= {OVERLAP_MIN}, recall@10 loss <= {RECALL_LOSS_MAX}; {len(rows)} runs")
    for measure in ("churn", "idf", "dense"):
        rho = float(np.corrcoef(rank([r[measure] for r in rows]), drift)[0, 1])
        threshold = None
        for r in sorted(rows, key=lambda r: r[measure]):
            if not within(r):
                break
            threshold = r[measure]
        kept = [r for r in rows if threshold is not None and r[measure] <= threshold]
        most = ", ".join(f"{k} {max([r['churn'] for r in kept if r['kind'] == k], default=0):.1%}" for k in kinds)
        print(f"{measure}: Spearman with 1 - overlap@10 {rho:.3f}; largest threshold with every run below it "
              f"within the tolerance {threshold}: {len(kept)} runs kept frozen (largest churn kept: {most})")


def main() -> None:
    if sys.argv[1:2] == ["--summarise"]:
        return summarise([Path(p) for p in sys.argv[2:]])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--gold", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True, help="an index's cache folder (vectors.sqlite)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/measure-drift"))
    parser.add_argument("--levels", type=float, nargs="+", default=[0.01, 0.02, 0.05, 0.1, 0.2, 0.3])
    parser.add_argument("--kinds", nargs="+", default=["mixed", "growth", "section"])
    parser.add_argument("--section", default="c-api/", help="id prefix of the held-out section (kind section)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("recommender", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from recommender.embed.embedder import get_embedder

    records, gold = read_jsonl(args.corpus), read_jsonl(args.gold)
    shutil.rmtree(args.work, ignore_errors=True)
    shutil.copytree(args.cache, args.work / "cache")
    embedder = get_embedder(None)
    churns = [Churn(records, kind, seed, args.section) for kind in args.kinds for seed in args.seeds]
    prepare_vectors(records, churns, max(args.levels), args.work, embedder)
    for churn in churns:
        root = args.work / f"{churn.kind}-{churn.seed}"
        write_jsonl(root / "base" / "articles.jsonl", churn.base_records())  # one file name: ids and paths kept
        shutil.copytree(args.work / "cache", root / "base" / "index" / "cache")
        batch(root / "base" / "articles.jsonl", root / "base" / "index", root / "base" / "out", embedder, refit=True)
        base_recall = recall_at_10(lists(root / "base" / "out"), gold)[0]
        seen = []
        for share in args.levels:
            corpus, counts = churn.level(share)
            if not any(counts.values()) or counts in seen:  # a section smaller than the level: measured already
                continue
            seen.append(counts)
            where = root / f"{share:g}"
            write_jsonl(where / "articles.jsonl", corpus)
            timer = time.perf_counter()
            for name in ("frozen", "fresh"):
                shutil.copytree(root / "base" / "index", where / name / "index")
            shutil.copytree(root / "base" / "out", where / "frozen" / "out")
            record = batch(where / "articles.jsonl", where / "frozen" / "index", where / "frozen" / "out", embedder,
                           refit=False)
            batch(where / "articles.jsonl", where / "fresh" / "index", where / "fresh" / "out", embedder, refit=True)
            frozen, fresh = lists(where / "frozen" / "out"), lists(where / "fresh" / "out")
            result = {"kind": churn.kind, "seed": churn.seed, "level": share, **counts,
                      "churn": sum(counts.values()) / len(churn.base),
                      **drift_of(where / "frozen" / "index", where / "frozen" / "out"), **compare(frozen, fresh),
                      "recall_frozen": recall_at_10(frozen, gold)[0], "recall_fresh": recall_at_10(fresh, gold)[0],
                      "gold_queries": recall_at_10(fresh, gold)[1], "recall_base": base_recall,
                      "frozen_lists": record.lists["kind"], "recomputed": record.lists["recomputed"],
                      "lexical_update": record.lexical_update, "articles": len(corpus)}
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}), flush=True)
            log.info("%s seed %d level %g done in %.1f s", churn.kind, churn.seed, share, time.perf_counter() - timer)
            shutil.rmtree(where / "fresh" / "index")  # the largest part; the outputs stay for a second look


if __name__ == "__main__":
    main()
