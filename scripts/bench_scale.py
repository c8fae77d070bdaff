"""Scale benchmark (issue 25, "Cost that grows slowly"): corpora recombined from MDN at given sizes, indexed
without the model, and for each size the index build, the batch's links phase per article and a query by id
(warm in process, cold in a fresh process), with every ranking part the code turns on, under the default
ranking and (with --learned-model) the learned ranking.

    python scripts/bench_scale.py --work /work/tmp-scalebench --sizes 10000 80000 100000 --out scale.json
        [--learned-model learned-ranker.json] [--source-index /work/idx/mdn] [--corpus MDN/articles.jsonl]
        [--sample 500] [--warm 30] [--cold 5] [--limit-seconds 1200] [--seed 0] [--noise 0.15] [--keep]
        [--reuse-corpus]
    python scripts/bench_scale.py --work W --report before.json after.json   # the tables of earlier runs again

Run it from a worktree root with PYTHONPATH set to the code to measure (the children inherit it). The learned
model: `recommender train --index COPY --gold MDN/gold.jsonl` on a copy of the source index, then its
COPY/learned-ranker.json; its curated lists name MDN ids, which the first copy of each base keeps, so the graph
facts stand at every size >= 14,592.

The corpus of size n (prefix-stable: article i is the same at every size, so the sample rows are the same rows):
article i copies a base article of MDN (the bases run through seeded permutations of MDN's 14,592 articles, so
the first copy of each base comes before any second copy). Its text is the base's paragraphs with 1-2
paragraphs of each of two other MDN articles inserted at seeded places. The first copy keeps the base's id,
title, URL and source; a later copy gets a distinguishing word (the c-th of a seeded list of MDN title words)
appended to its title, id, URL and source, so that names stay unique and the mention matrix grows with n, not
with n times the copies. Its article vector and window vectors are the base's (read from the source index,
windows dequantised from their int8 codes) plus seeded Gaussian noise of norm `--noise`, re-normalised: no
model runs. The corpus is written as shards of JSONL under 45 MB each (the reader's cap is 50 MB), one article at a
time; the window vectors are written to a file in --work a block at a time and handed to write_index as rows read
from it a block at a time (DiskRows), as an embedder's output file would be: at 1M articles they are 3 GB.

Per size, one child process (its own peak RSS, killed after --limit-seconds; larger sizes are then not tried):
  build    read the shards with the project's reader, content hashes, then `recommender.batch.build.write_index`
           (FAISS, metadata, lexical index with mentions, query data, windows, the learned ranking's arrays):
           seconds and peak RSS (ru_maxrss; the synthetic vectors, which stand in for the embedding, are made
           in the same process but not timed)
  links    per ranking (default: `[ranking] learned = "off"`; learned: the policy's default, "auto"), the LinkJob
           the nightly batch builds, `link_rows` over a fixed seeded sample of rows (drawn from the first
           min(10,000, smallest size) rows: the same rows at every size and in every run that includes no
           smaller size): the set-up (the ranker, and the first row, which pays what the ranker
           builds on first use) in seconds, then wall and CPU ms per article over the other rows; the full links
           phase extrapolated as set-up + wall ms per article x n / cores
  warm     `Index.open(...).related_answer(id, k=10, policy=..., stored=False)` on --warm sample ids after one
           warm-up: median wall and CPU
Then, from the parent, cold: `python -m recommender.cli related ID --index DIR --json -q --compute --policy F`
in --cold fresh processes after one warm-up (scripts/bench_query.run_once): median wall, CPU and peak RSS.
Printed: a table per size and ranking, the ratios between consecutive sizes (and the exponent of each growth:
log(ratio) / log(size ratio); 0.5 is sqrt(n)), and the issue's targets that the sizes run allow checking.
--out writes every figure as JSON (after each size). The machine's load average is logged after each size:
the CPU figures are the ones to compare when other work shares the cores.

Whether the window part is on is read from the ranker (today an approximate index, above 150,000 articles,
stores no windows and the ranking runs without them: reported as "off").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SCRIPTS = Path(__file__).resolve().parent
MDN = Path("/work/shared/corpora/mdn/articles.jsonl")
SOURCE_INDEX = Path("/work/idx/mdn")
SHARD_BYTES = 45 * 2**20
BLOCK = 10_000  # the noise of articles [b * BLOCK, (b + 1) * BLOCK) comes from generator (seed, b): prefix-stable


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def status_mb(key: str) -> float | None:
    """VmRSS (now) or VmHWM (the peak since the last reset_peak) of this process from /proc, in MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def trim_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's malloc_trim): the freed articles' text is GBs at
    1M articles, held by the allocator in pages it does not return by itself."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak() -> bool:
    """Start VmHWM afresh from the current RSS (Linux: clear_refs 5), so a phase's own peak can be read."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# --- the recombined corpus ---------------------------------------------------------------------------------

def read_mdn(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def plan(n: int, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(base row, copy number) of articles 0..n-1: seeded permutations of the `count` bases, one after another."""
    rounds = -(-n // count)
    bases = np.concatenate([np.random.default_rng([seed, 1, r]).permutation(count) for r in range(rounds)])[:n]
    copies = np.repeat(np.arange(rounds), count)[:n]
    return bases, copies


def distinguishing_words(records: list[dict], seed: int) -> list[str]:
    """Lowercase words of MDN titles (5-12 letters), in a seeded order: the c-th marks copy c of a base."""
    words = sorted({w.lower() for r in records for w in re.findall(r"[A-Za-z]{5,12}", r["title"])})
    order = np.random.default_rng([seed, 2]).permutation(len(words))
    return [words[i] for i in order]


def article_id(record: dict, copy: int, words: list[str]) -> str:
    return record["id"] if copy == 0 else f"{record['id']}-{words[copy - 1]}"


def synthetic_record(i: int, base: int, copy: int, records: list[dict], words: list[str], seed: int) -> dict:
    rng = np.random.default_rng([seed, 3, i])
    record = records[base]
    paragraphs = [p for p in record["text"].split("\n\n") if p.strip()]
    for donor in rng.integers(0, len(records), 2):
        theirs = [p for p in records[donor]["text"].split("\n\n") if p.strip()]
        for p in rng.choice(len(theirs), min(len(theirs), int(rng.integers(1, 3))), replace=False) if theirs else []:
            paragraphs.insert(int(rng.integers(0, len(paragraphs) + 1)), theirs[p])
    out = {"id": article_id(record, copy, words), "title": record["title"], "text": "\n\n".join(paragraphs)}
    for key in ("excerpt", "url", "source", "page_type"):
        if record.get(key):
            out[key] = record[key]
    if copy:
        word = words[copy - 1]
        out["title"] = f"{record['title']} {word}"
        for key in ("url", "source"):
            if key in out:
                out[key] = f"{out[key]}-{word}"
    return out


def write_corpus(folder: Path, n: int, records: list[dict], words: list[str], seed: int) -> dict:
    """Shards of JSONL (part-00000.jsonl, ...) each under SHARD_BYTES; returns their count and bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    bases, copies = plan(n, len(records), seed)
    if copies.max() > len(words):
        raise SystemExit(f"{n} articles need {copies.max()} distinguishing words, there are {len(words)}")
    shard, size, total, fh = 0, 0, 0, None
    for i in range(n):
        line = (json.dumps(synthetic_record(i, int(bases[i]), int(copies[i]), records, words, seed),
                           ensure_ascii=False) + "\n").encode("utf-8")
        if fh is None or size + len(line) > SHARD_BYTES:
            if fh is not None:
                fh.close()
                shard += 1
            fh, size = open(folder / f"part-{shard:05d}.jsonl", "wb"), 0
        fh.write(line)
        size += len(line)
        total += len(line)
    fh.close()
    written = {"n": n, "seed": seed, "shards": shard + 1, "bytes": total}
    corpus_record(folder).write_text(json.dumps(written), encoding="utf-8")  # the corpus is complete
    return written


def corpus_record(folder: Path) -> Path:
    """What write_corpus wrote into `folder` (beside it), once complete: --reuse-corpus reads it."""
    return folder.with_name(folder.name + ".json")


def jittered(base: np.ndarray, rows: np.ndarray, noise: float, rng) -> np.ndarray:
    """Unit vectors: base[rows] plus Gaussian noise of expected norm `noise`, re-normalised."""
    block = base[rows] + rng.normal(0, noise / math.sqrt(base.shape[1]), (len(rows), base.shape[1]))
    return (block / np.linalg.norm(block, axis=1, keepdims=True)).astype(np.float32)


class DiskRows:
    """The rows of an n x d array kept in a raw file, read a slice at a time (np.fromfile), never mapped: what
    write_index reads a block at a time (the windows, quantised block by block) takes no memory while held.
    At 1M articles the float16 windows alone are 3 GB. once: the file is deleted when its last rows have been
    read (the build reads the windows once, in order; at 1M the disk the index takes is what runs short)."""

    def __init__(self, path: Path, shape: tuple[int, int], dtype, once: bool = False):
        self.path, self.shape, self.dtype, self.once = path, shape, np.dtype(dtype), once

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, step = rows.indices(len(self))
        if step != 1:
            raise ValueError("DiskRows reads contiguous slices only")
        width = self.shape[1]
        block = np.fromfile(self.path, dtype=self.dtype, count=max(0, stop - start) * width,
                            offset=start * width * self.dtype.itemsize)
        if self.once and stop >= len(self):
            self.path.unlink(missing_ok=True)
        return block.reshape(-1, width)


def synthetic_vectors(source: Path, ids: list[str], bases: np.ndarray, noise: float, seed: int,
                      windows_file: Path | None = None, once: bool = False):
    """(article vectors n x d float32, embed.vectorize.Windows) for articles copying `bases` (rows of `ids`,
    the MDN records' order), from the source index's vectors and stored windows, jittered. windows_file: the
    window vectors are written there a block at a time and given as DiskRows (else held in memory)."""
    from recommender.embed.vectorize import Windows
    from recommender.rank.index import Index
    from recommender.store.windowfiles import read_windows

    with Index.open(source) as index:
        row_of = {article: row for row, article in enumerate(index.data.store.ids())}
        where = np.array([row_of[article] for article in ids])  # MDN record -> source index row
        real = np.ascontiguousarray(index.data.vectors.vectors(), dtype=np.float32)[where]
        codes, scales, offsets = read_windows(index.data.folder, index.data.manifest)
        starts, stops = offsets[where], offsets[where + 1]
    n, dim = len(bases), real.shape[1]
    vectors = np.empty((n, dim), np.float32)
    counts = (stops - starts)[bases]
    out_offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    shape = (int(out_offsets[-1]), dim)
    windows = np.empty(shape, np.float16) if windows_file is None else None
    out = open(windows_file, "wb") if windows_file is not None else None
    for b in range(0, n, BLOCK):
        rng = np.random.default_rng([seed, 4, b // BLOCK])
        rows = bases[b:b + BLOCK]
        vectors[b:b + len(rows)] = jittered(real, rows, noise, rng)
        source_rows = np.concatenate([np.arange(starts[r], stops[r]) for r in rows])
        real_windows = np.asarray(codes[source_rows], np.float32) * np.asarray(scales[source_rows])[:, None]
        real_windows /= np.linalg.norm(real_windows, axis=1, keepdims=True)
        block = jittered(real_windows, np.arange(len(source_rows)), noise, rng).astype(np.float16)
        if out is None:
            windows[out_offsets[b]:out_offsets[b + len(rows)]] = block
        else:
            out.write(block.tobytes())
    if out is not None:
        out.close()
        windows = DiskRows(windows_file, shape, np.float16, once)
    return vectors, Windows(windows, out_offsets)


SAMPLE_FROM = 10_000  # the sample rows come from the first SAMPLE_FROM rows (fewer when a size is smaller)


def sample_rows(smallest: int, sample: int, seed: int) -> np.ndarray:
    """The first `sample` of a seeded order of those rows, sorted: a smaller sample is part of a larger one."""
    return np.sort(np.random.default_rng([seed, 5]).permutation(min(SAMPLE_FROM, smallest))[:sample])


# --- one size, in a child process ----------------------------------------------------------------------------

class Stub:
    """The embedder's identity write_index records (the source index's model): no model is loaded or run."""

    def __init__(self, model: dict):
        self.name, self.fingerprint, self.backend = model["name"], model["fingerprint"], model.get("backend")


def measure_size(args) -> dict:
    """Build the index of one size from its shards, then time the links phase and warm queries."""
    from recommender.batch.build import read_logged, write_index
    from recommender.embed.prepare import Preparation
    from recommender.embed.vectorize import content_hashes
    from recommender.rank.index import Index
    from recommender.store.manifest import read_manifest

    n, work = args.child, args.work
    corpus_dir, index_dir = work / f"corpus-{n}", work / f"index-{n}"
    records = read_mdn(args.corpus)
    words = distinguishing_words(records, args.seed)
    bases, copies = plan(n, len(records), args.seed)
    ids = [article_id(records[b], int(c), words) for b, c in zip(bases, copies)]
    mdn_ids = [r["id"] for r in records]
    del records
    result: dict = {"n": n, "seconds": {}}
    seconds = result["seconds"]

    log(f"{n}: reading the shards")
    timer, cpu = time.perf_counter(), time.process_time()
    corpus = read_logged(corpus_dir)
    seconds["read"] = time.perf_counter() - timer
    cpu_seconds = time.process_time() - cpu
    if [a.id for a in corpus.articles] != ids:
        raise SystemExit(f"{corpus_dir}: the reader gave other articles than written ({len(corpus.articles)} read)")
    if not args.keep:  # read: its disk is freed for the index (at 1M, GBs)
        shutil.rmtree(corpus_dir, ignore_errors=True)
        corpus_record(corpus_dir).unlink(missing_ok=True)
    log(f"{n}: synthetic vectors and windows (not timed as build)")
    timer = time.perf_counter()
    vectors, windows = synthetic_vectors(args.source_index, mdn_ids, bases, args.noise, args.seed,
                                         work / f"windows-{n}.f16", once=not args.keep)
    seconds["synthetic_vectors"] = time.perf_counter() - timer
    log(f"{n}: content hashes")
    timer, cpu = time.perf_counter(), time.process_time()
    preparation = Preparation()
    hashes = content_hashes(corpus.articles, preparation)
    seconds["hash"] = time.perf_counter() - timer
    cpu_seconds += time.process_time() - cpu
    log(f"{n}: write_index ({len(windows.vectors)} windows)")
    # what the build's input holds (articles, vectors, windows) before it starts, then the build's own peak
    result["build_input_rss_mb"] = status_mb("VmRSS")
    fresh = reset_peak()
    timer, cpu = time.perf_counter(), time.process_time()
    if args.learned_model:  # a stored learned ranking: write_index makes its arrays for the new version
        from recommender.store.manifest import LEARNED_MODEL_FILE

        index_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.learned_model, index_dir / LEARNED_MODEL_FILE)
    # the articles handed over: write_index reads them back from its metadata once written (at 1M, 5 GB)
    write_index(index_dir, corpus.articles, vectors, hashes, Stub(read_manifest(args.source_index).model),
                preparation, stats={"problems": len(corpus.problems)}, windows=windows,
                release=lambda: (corpus.articles.clear(), trim_heap()))
    seconds["write_index"] = time.perf_counter() - timer
    seconds["write_index_cpu"] = time.process_time() - cpu
    seconds["build"] = seconds["read"] + seconds["hash"] + seconds["write_index"]
    seconds["build_cpu"] = cpu_seconds + seconds["write_index_cpu"]  # all threads (FAISS's training uses several)
    result["build_peak_rss_mb"] = peak_mb()
    result["write_index_peak_rss_mb"] = status_mb("VmHWM") if fresh else None
    del corpus, windows
    (work / f"windows-{n}.f16").unlink(missing_ok=True)
    log(f"{n}: built in {seconds['build']:.1f} s ({seconds['build_cpu']:.1f} s CPU), peak RSS "
        f"{result['build_peak_rss_mb']:.0f} MB (input "
        f"{result['build_input_rss_mb'] or 0:.0f} MB before write_index, whose peak was "
        f"{result['write_index_peak_rss_mb'] or 0:.0f} MB)")

    rows = sample_rows(args.smallest, args.sample, args.seed)
    with Index.open(index_dir) as index:
        stats = index.data.manifest.stats
        result.update(backend=index.data.manifest.backend, windows_stored=int(stats.get("windows", 0)),
                      lexical_terms=stats.get("lexical_terms"), mentions=stats.get("mentions"),
                      index_bytes=sum(p.stat().st_size for p in index_dir.iterdir() if p.is_file()))
    sample_ids = [ids[r] for r in rows[:args.warm + 1]]
    result["cold_id"] = sample_ids[1]
    result["rankings"] = {label: measure_ranking(index_dir, vectors, policy, rows, sample_ids)
                          for label, policy in rankings(args.learned_model is not None).items()}
    result["peak_rss_mb"] = peak_mb()
    return result


def rankings(learned: bool) -> dict:
    """The policies measured: the default ranking (learned ranking off), and with a stored model the one in force."""
    from dataclasses import replace

    from recommender.rank.policy import Policy

    policy = Policy()
    off = replace(policy, ranking=replace(policy.ranking, learned="off"))
    return {"default": off, "learned": policy} if learned else {"default": off}


POLICY_TOML = {"default": '[ranking]\nlearned = "off"\n', "learned": ""}  # the same policies for the CLI


def measure_ranking(index_dir: Path, vectors: np.ndarray, policy, rows: np.ndarray, sample_ids: list[str]) -> dict:
    """Links phase over the sample rows, then warm queries by id, under one policy."""
    from recommender.batch.relatedlists import job_for_index, link_rows
    from recommender.rank.index import Index

    out: dict = {}
    with Index.open(index_dir) as index:
        out["ranking"] = index.ranking_in_force(policy)
        timer = time.perf_counter()
        # the job the nightly batch builds (recommender.batch.nightly.run_batch), on the build's vectors
        learned = index.learned_model(policy)
        job = job_for_index(index, vectors, policy, learned=learned)
        ranker = job.ranker()
        out["links_setup_seconds"] = time.perf_counter() - timer
        out["parts"] = {name: float(weight) for name, weight in ranker.weights.items()}
        out["window_part"] = "on" if ranker.windows is not None and ranker.weights.get("window") else "off"
        log(f"{len(vectors)}: {out['ranking']}: links over {len(rows)} sample rows (window part "
            f"{out['window_part']})")
        timer = time.perf_counter()  # the first row pays what the ranker builds on first use, once per run
        links = link_rows(job, rows[:1])
        out["links_first_row_seconds"] = time.perf_counter() - timer
        timer, cpu = time.perf_counter(), time.process_time()
        links += link_rows(job, rows[1:])
        seconds = time.perf_counter() - timer
        out["links_ms_per_article"] = 1000 * seconds / (len(rows) - 1)
        out["links_cpu_ms_per_article"] = 1000 * (time.process_time() - cpu) / (len(rows) - 1)  # all threads
        out["links_per_list"] = sum(map(len, links)) / len(links)
        out["links_peak_rss_mb"] = peak_mb()
        del job, ranker, links

    log(f"{len(vectors)}: warm queries")
    with Index.open(index_dir) as index:
        timer = time.perf_counter()
        _, answered = index.related_answer(sample_ids[0], k=10, policy=policy, stored=False)
        out["first_query_seconds"] = time.perf_counter() - timer
        times, cpus = [], []
        for article in sample_ids[1:]:
            timer, cpu = time.perf_counter(), time.process_time()
            index.related_answer(article, k=10, policy=policy, stored=False)
            times.append(time.perf_counter() - timer)
            cpus.append(time.process_time() - cpu)
    out["warm_ms"] = 1000 * statistics.median(times)
    out["warm_cpu_ms"] = 1000 * statistics.median(cpus)
    out["warm_answered_by"] = answered
    return out


# --- the parent: sizes one after the other -----------------------------------------------------------------

def cold_queries(index_dir: Path, article: str, runs: int, policy_file: Path) -> dict:
    sys.path.insert(0, str(SCRIPTS))
    from bench_query import run_once

    import recommender

    code = Path(recommender.__file__).resolve().parent.parent
    extra = ["--compute", "--policy", str(policy_file)]
    figures = [run_once(code, index_dir, article, extra) for _ in range(runs + 1)][1:]  # 1 warm-up, not counted
    return {"cold_s": statistics.median(f[0] for f in figures), "cold_cpu_s": statistics.median(f[1] for f in figures),
            "cold_rss_mb": statistics.median(f[2] for f in figures),
            "cold_answered_by": sorted({f[3].get("answered_by") for f in figures})}


def run_size(n: int, args, records: list[dict], words: list[str]) -> dict:
    corpus_dir, index_dir = args.work / f"corpus-{n}", args.work / f"index-{n}"
    shutil.rmtree(index_dir, ignore_errors=True)
    timer = time.perf_counter()
    record = corpus_record(corpus_dir)
    written = json.loads(record.read_text(encoding="utf-8")) if args.reuse_corpus and record.exists() else None
    if written is not None and (written.get("n"), written.get("seed")) == (n, args.seed):
        log(f"{n}: the corpus written before ({written['shards']} shards)")
    else:
        log(f"{n}: writing the corpus")
        record.unlink(missing_ok=True)
        shutil.rmtree(corpus_dir, ignore_errors=True)
        written = write_corpus(corpus_dir, n, records, words, args.seed)
    corpus_seconds = time.perf_counter() - timer
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(n), "--work", str(args.work),
               "--smallest", str(min(args.sizes)), "--sample", str(args.sample), "--warm", str(args.warm),
               "--seed", str(args.seed), "--noise", str(args.noise), "--corpus", str(args.corpus),
               "--source-index", str(args.source_index)] + (
                   ["--learned-model", str(args.learned_model)] if args.learned_model else []) + (
                   ["--keep"] if args.keep else [])
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=None, text=True)
    try:
        out, _ = child.communicate(timeout=args.limit_seconds)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        result = {"n": n, "failed": f"not finished in {args.limit_seconds:.0f} s (the log lines above show the "
                                    "stage it was in)"}
    else:
        result = {"n": n, "failed": f"child exited with {child.returncode}"} if child.returncode else \
            json.loads(out.strip().splitlines()[-1])
    cores = os.cpu_count()
    for label, figures in result.get("rankings", {}).items():
        log(f"{n}: cold queries ({label})")
        policy_file = args.work / f"policy-{label}.toml"
        policy_file.write_text(POLICY_TOML[label], encoding="utf-8")
        figures.update(cold_queries(index_dir, result["cold_id"], args.cold, policy_file))
        figures["links_full_hours"] = full_links_hours(figures, n, cores)
    result.update(corpus=written, corpus_seconds=corpus_seconds, cores=cores, load_average=os.getloadavg()[0])
    lines_load = f"load average {result['load_average']:.2f} on {cores} cores after {n}"
    log(lines_load)
    if not args.keep:
        shutil.rmtree(index_dir, ignore_errors=True)
        shutil.rmtree(corpus_dir, ignore_errors=True)
        record.unlink(missing_ok=True)
    return result


def full_links_hours(figures: dict, n: int, cores: int) -> float:
    """The whole links phase: the set-up once (ranker, first row), then ms per article x n over the cores."""
    once = figures["links_setup_seconds"] + figures.get("links_first_row_seconds", 0.0)
    return (once + figures["links_ms_per_article"] * n / cores / 1000) / 3600


def growth(a: dict, b: dict, key: str, n: tuple[int, int]) -> tuple[float, float]:
    """(ratio b / a of a figure, its exponent: log(ratio) / log(size ratio))."""
    ratio = b[key] / a[key]
    return ratio, math.log(ratio) / math.log(n[1] / n[0])


def report(results: list[dict]) -> list[str]:
    lines = [f"{'n':>9} {'build s':>8} {'build MB':>9} {'index MB':>9} {'windows':>8}  {'ranking':<8} {'window':>6} "
             f"{'set-up s':>8} {'links ms/art':>12} {'(CPU)':>6} {'links min (full)':>16} {'warm ms':>8} {'(CPU)':>6} {'cold s':>7} "
             f"{'(CPU)':>6} {'cold MB':>8}"]
    labels = []
    for r in results:
        if "failed" in r:
            lines.append(f"{r['n']:>9} FAILED: {r['failed']}")
            continue
        for label, f in r["rankings"].items():
            labels += [label] if label not in labels else []
            lines.append(f"{r['n']:>9} {r['seconds']['build']:>8.1f} {r['build_peak_rss_mb']:>9.0f} "
                         f"{r['index_bytes'] / 2**20:>9.0f} {r['windows_stored']:>8}  {label:<8} "
                         f"{f['window_part']:>6} "
                         f"{f['links_setup_seconds'] + f.get('links_first_row_seconds', 0.0):>8.1f} "
                         f"{f['links_ms_per_article']:>12.2f} "
                         f"{f['links_cpu_ms_per_article']:>6.2f} {60 * f['links_full_hours']:>16.1f} "
                         f"{f['warm_ms']:>8.1f} {f['warm_cpu_ms']:>6.1f} {f['cold_s']:>7.3f} {f['cold_cpu_s']:>6.3f} "
                         f"{f['cold_rss_mb']:>8.0f}")
    done = [r for r in results if "failed" not in r]
    for r in done:  # the build's memory: what its input held, and its own peak above that
        if r.get("write_index_peak_rss_mb"):
            held, peak = r["build_input_rss_mb"], r["write_index_peak_rss_mb"]
            cpu = f"{r['seconds']['build_cpu']:.1f} s CPU, " if "build_cpu" in r["seconds"] else ""
            lines.append(f"{r['n']:>9}: build {cpu}peak {r['build_peak_rss_mb']:.0f} MB; before write_index the input "
                         f"held {held:.0f} MB (articles, vectors, windows), write_index peaked at {peak:.0f} MB "
                         f"(+{peak - held:.0f}); {r.get('mentions') or 0:,} mentions, {r['windows_stored']:,} windows")
    for label in labels:
        lines.append(f"{label}: {done[0]['rankings'][label]['ranking']}")
        for a, b in zip(done, done[1:]):
            sizes = (a["n"], b["n"])
            parts = [f"  {a['n']} -> {b['n']} (x{b['n'] / a['n']:.1f}; sqrt x{math.sqrt(b['n'] / a['n']):.2f}):"]
            for key, name in (("links_ms_per_article", "links per article"), ("links_cpu_ms_per_article", "(CPU)"),
                              ("warm_ms", "warm query"), ("warm_cpu_ms", "(CPU)"), ("cold_s", "cold query"),
                              ("cold_cpu_s", "(CPU)")):
                ratio, exponent = growth(a["rankings"][label], b["rankings"][label], key, sizes)
                parts.append(f"{name} x{ratio:.2f} (exponent {exponent:.2f})")
            lines.append("  ".join(parts))
        by_n = {r["n"]: r["rankings"][label] for r in done}
        if 10_000 in by_n and 80_000 in by_n:
            w10, w80 = by_n[10_000]["warm_ms"], by_n[80_000]["warm_ms"]
            met = w80 < 3 * w10 or w80 < 10
            c10, c80 = by_n[10_000]["warm_cpu_ms"], by_n[80_000]["warm_cpu_ms"]
            lines.append(f"  target: warm query at 80,000 under 3x its 10,000 figure or under 10 ms: {w80:.1f} ms = "
                         f"{w80 / w10:.2f}x {w10:.1f} ms: {'met' if met else 'NOT met'}; in CPU time {c80:.1f} ms = "
                         f"{c80 / c10:.2f}x {c10:.1f} ms: {'met' if c80 < 3 * c10 or c80 < 10 else 'NOT met'}")
        if 100_000 in by_n and 1_000_000 in by_n:
            _, exponent = growth(by_n[100_000], by_n[1_000_000], "links_ms_per_article", (100_000, 1_000_000))
            lines.append(f"  target: links per article 100k -> 1M growing no faster than ~sqrt(n): exponent "
                         f"{exponent:.2f}: {'met' if exponent <= 0.55 else 'NOT met'}")
        if 1_000_000 in by_n:
            f = by_n[1_000_000]
            lines.append(f"  target at 1M: full links phase {f['links_full_hours']:.2f} h on {done[0]['cores']} cores "
                         f"(< 1 h), warm {f['warm_ms']:.1f} ms (< 20), cold {f['cold_s']:.3f} s (< 0.5), window "
                         f"part {f['window_part']}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the corpora and indexes")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 80_000, 100_000])
    parser.add_argument("--out", type=Path, help="write every figure here as JSON")
    parser.add_argument("--corpus", type=Path, default=MDN, help="MDN's articles.jsonl")
    parser.add_argument("--source-index", type=Path, default=SOURCE_INDEX,
                        help="an index of that corpus (its vectors and windows are jittered; only read)")
    parser.add_argument("--learned-model", type=Path, help="a learned-ranker.json (`recommender train` on the "
                        "source index with its gold lists) stored with every index: the learned ranking on")
    parser.add_argument("--sample", type=int, default=500, help="query rows of the links phase")
    parser.add_argument("--warm", type=int, default=30, help="warm queries by id (median)")
    parser.add_argument("--cold", type=int, default=5, help="cold query processes (median)")
    parser.add_argument("--noise", type=float, default=0.15, help="norm of the Gaussian jitter of each vector")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-seconds", type=float, default=1200, help="per size: stop a size that runs longer")
    parser.add_argument("--keep", action="store_true", help="keep each corpus and index (else the corpus is "
                        "deleted once read, the windows' file once quantised, the index after its size)")
    parser.add_argument("--reuse-corpus", action="store_true", help="take a size's corpus from --work when a "
                        "complete one of that size and seed is there (written by an earlier run with --keep)")
    parser.add_argument("--report", type=Path, nargs="+", help="print the tables of these --out files, then stop")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--smallest", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import logging  # the library's log lines, and the end of each of write_index's phases, with their times

        logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S",
                            stream=sys.stderr)
        logging.getLogger("recommender.batch.build").setLevel(logging.DEBUG)
        print(json.dumps(measure_size(args)))
        return
    if args.report:
        for path in args.report:
            print(f"## {path}\n" + "\n".join(report(json.loads(path.read_text(encoding="utf-8"))["sizes"])))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    if args.work.resolve().is_relative_to(args.source_index.resolve()) or args.work.resolve().is_relative_to("/work/idx"):
        raise SystemExit(f"--work {args.work}: never inside an index or /work/idx; pick a folder of your own")
    args.sizes = sorted(args.sizes)
    records = read_mdn(args.corpus)
    words = distinguishing_words(records, args.seed)
    results = []
    for n in args.sizes:
        results.append(run_size(n, args, records, words))
        lines = report(results)
        print("\n".join(lines), flush=True)
        if args.out:
            args.out.write_text(json.dumps({"sizes": results, "report": lines}, indent=1) + "\n", encoding="utf-8")
        if "failed" in results[-1]:
            log(f"{n} did not finish: larger sizes are not tried")
            break


if __name__ == "__main__":
    main()
