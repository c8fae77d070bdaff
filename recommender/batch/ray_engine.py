"""The Ray engine: the batch's embedding phase as a Ray Data pipeline over an actor pool, its all-pairs
phase as Ray tasks over blocks of query rows, and its reading and lexical fit as Ray tasks over shards. Imported only when `--engine ray` is asked for.

Workers only compute; the driver keeps the vector cache, writes the index and the outputs and holds the lock,
exactly as in the local engine. A worker that dies costs a retry, not the run: embedding actors are restarted
and their batch retried (`max_restarts`, `max_task_retries`), all-pairs tasks are retried (`max_retries`), and
the driver checks that every text came back exactly once.

Every node needs this package and the model installed (the same versions as the driver): a worker builds its
embedder from the model spec and backend, and refuses to run if its vectors would not carry the driver's model
fingerprint (a worker CPU without bf16 next to a driver with it, say), so vectors from different engines and
machines are never mixed in the cache.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import warnings
from typing import Callable, Iterable, Sequence

import numpy as np
import ray

from ..common.blocks import blocks
from ..embed.embedder import Embedder, declared_language, declared_max_tokens, get_embedder
from ..embed.openvino_embedder import THREADS_ENV

log = logging.getLogger(__name__)

# Test hook: a file path. The first Ray worker (embedding actor or all-pairs task) that manages to delete the
# file exits on the spot, as a killed worker would; the run must still complete with every article once.
FAULT_ENV = "RECOMMENDER_RAY_FAULT"
# CPUs (and inference threads) per embedding actor. Default: the CPUs of the smallest node, i.e. one actor per
# node using all its cores. Measured here (3,000 MDN texts, 2 cores): one 2-thread actor 23.5 s, two 1-thread
# actors 40.9-43.7 s, the local engine 20.1-20.5 s.
CPUS_PER_ACTOR_ENV = "RECOMMENDER_RAY_CPUS_PER_ACTOR"

TEXTS_PER_BATCH = 256  # texts per Ray Data batch handed to an actor
ARTICLES_PER_ACTOR = 2048  # vectorize round = this many articles per actor (at least 4096)
MAX_RETRIES = 3  # restarts of a dead actor, retries of a lost batch, block or shard
SHARDS_IN_FLIGHT = 2  # shard tasks started and not finished, per CPU of the cluster


def _maybe_die(fault: str | None) -> None:
    if not fault:
        return
    try:
        os.unlink(fault)
    except OSError:
        return
    os._exit(1)  # noqa: SLF001 - the point: die like a killed worker, no clean-up


class EmbedActor:
    """One Ray Data actor: builds the embedder once, then embeds batches of {"i", "text"} rows."""

    def __init__(self, model: str | None, backend: str, fingerprint: str, batch_size: int, threads: int,
                 fault: str | None = None):
        os.environ[THREADS_ENV] = str(threads)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.embedder = get_embedder(model, backend=backend)
        if self.embedder.fingerprint != fingerprint:
            raise RuntimeError(
                f"worker {socket.gethostname()} embeds with {self.embedder.fingerprint}, the driver expects "
                f"{fingerprint}: install the same model and versions on every node, or pick a --backend they share"
            )
        self.batch_size = batch_size
        self.fault = fault

    def __call__(self, batch: dict) -> dict:
        _maybe_die(self.fault)
        vectors = self.embedder.encode([str(t) for t in batch["text"]], batch_size=self.batch_size)
        return {"i": np.asarray(batch["i"], dtype=np.int64), "vector": vectors}


class RayEmbedder:
    """An embedder whose `encode` runs on Ray actors; name, fingerprint, dimension and backend are the local
    embedder's, so the vector cache does not care which engine made a vector."""

    def __init__(self, local: Embedder, *, model: str | None, backend: str, actors: int, cpus_per_actor: int):
        self.local = local
        self.name = local.name
        self.language = declared_language(local)
        self.max_tokens = declared_max_tokens(local)
        self.model = model
        self.backend_choice = backend
        self.actors = actors
        self.cpus_per_actor = cpus_per_actor

    @property
    def fingerprint(self) -> str:
        return self.local.fingerprint

    @property
    def dimension(self) -> int:
        return self.local.dimension

    @property
    def backend(self) -> str:
        return getattr(self.local, "backend", "unknown")

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dimension), dtype=np.float32)
        items = [{"i": i, "text": t} for i, t in enumerate(texts)]
        dataset = ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / TEXTS_PER_BATCH))
        with warnings.catch_warnings():
            # Ray 2.60 takes max_restarts / max_task_retries only as `**ray_remote_args`, which it calls deprecated
            # (removal in 2.64); its own default would be unbounded retries, which let a batch that always kills
            # its worker hang the nightly run. The extra's upper bound keeps this working.
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            dataset = self._pipeline(dataset, batch_size)
        rows, parts = [], []
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            rows.append(batch["i"])
            parts.append(np.asarray(batch["vector"], dtype=np.float32))
        rows_all = np.concatenate(rows)
        counts = np.bincount(rows_all, minlength=len(texts))
        if len(counts) != len(texts) or (counts != 1).any():
            raise RuntimeError(f"Ray returned {int((counts == 0).sum())} texts never and "
                               f"{int((counts > 1).sum())} more than once; the round is not committed")
        out = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        out[rows_all] = np.concatenate(parts)
        return out

    def _pipeline(self, dataset, batch_size: int):
        return dataset.map_batches(
            EmbedActor,
            fn_constructor_kwargs=dict(model=self.model, backend=self.backend_choice, fingerprint=self.fingerprint,
                                       batch_size=batch_size, threads=self.cpus_per_actor,
                                       fault=os.environ.get(FAULT_ENV)),
            batch_size=TEXTS_PER_BATCH,
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=self.actors),
            num_cpus=self.cpus_per_actor,
            max_restarts=MAX_RETRIES,
            max_task_retries=MAX_RETRIES,
        )


# The all-pairs job of the current run, deserialised once per worker process (not once per block).
_SHARED: dict[str, object] = {}


def _shared(box: list) -> object:
    key = box[0].hex()
    if key not in _SHARED:
        _SHARED.clear()
        _SHARED[key] = ray.get(box[0])
    return _SHARED[key]


@ray.remote(max_retries=MAX_RETRIES)
def _run_block(fn: Callable, box: list, start: int, stop: int, fault: str | None):
    _maybe_die(fault)
    return fn(_shared(box), start, stop)


@ray.remote(max_retries=MAX_RETRIES)
def _run_shard(fn: Callable, box: list, part, fault: str | None):
    _maybe_die(fault)
    return fn(_shared(box), part)


def smallest_node_cpus() -> int:
    """CPUs of the smallest alive node of the cluster (1 if Ray does not say)."""
    counts = [int(node.get("Resources", {}).get("CPU", 0)) for node in ray.nodes() if node.get("Alive")]
    counts = [c for c in counts if c > 0]
    return min(counts) if counts else 1


class RayEngine:
    """Runs on the Ray cluster at `address` ("auto", "ray://host:10001", ...), or on a local Ray instance of
    `num_cpus` CPUs when no address is given. A Ray already initialised in this process is used as it is."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, cpus_per_actor: int | None = None):
        self._started = False
        if not ray.is_initialized():
            ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                     logging_level=logging.WARNING, configure_logging=False)
            self._started = True
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the batch's own bar counts articles
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # per-round "execution finished" lines are noise
        cpus = int(ray.cluster_resources().get("CPU", 1))
        wanted = cpus_per_actor or int(os.environ.get(CPUS_PER_ACTOR_ENV, "0")) or smallest_node_cpus()
        self.cpus = cpus
        self.cpus_per_actor = max(1, min(cpus, wanted))
        self.actors = max(1, cpus // self.cpus_per_actor)
        log.info("Ray engine: %d CPUs, up to %d embedding actors of %d CPU(s)", cpus, self.actors,
                 self.cpus_per_actor)

    def wrap_embedder(self, embedder: Embedder, *, model: str | None = None, backend: str = "auto") -> Embedder:
        if model is None and embedder.name.startswith("hashing"):
            model = embedder.name  # the test embedder: its name is its spec
        return RayEmbedder(embedder, model=model, backend=backend, actors=self.actors,
                           cpus_per_actor=self.cpus_per_actor)

    def round_size(self) -> int:
        return max(4096, ARTICLES_PER_ACTOR * self.actors)

    def map_blocks(self, fn: Callable, shared, n: int, block: int,
                   progress: Callable[[int], object] | None = None) -> list:
        spans = blocks(n, block)
        if not spans:
            return []
        box = [ray.put(shared)]  # in a list, so that tasks get the reference and fetch it once per worker
        fault = os.environ.get(FAULT_ENV)
        futures = [_run_block.remote(fn, box, start, stop, fault) for start, stop in spans]
        where = {future: number for number, future in enumerate(futures)}
        results: list = [None] * len(futures)
        pending = list(futures)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for future in done:
                number = where[future]
                results[number] = ray.get(future)
                if progress is not None:
                    progress(spans[number][1] - spans[number][0])
        return results

    def map_shards(self, fn: Callable, parts: Iterable, common=None) -> list:
        """One task a part (retried if its worker dies), at most SHARDS_IN_FLIGHT per CPU running or queued, so
        a generator of parts (the corpus's bytes) is drawn as the tasks go; results in the parts' order."""
        box = [ray.put(common)]
        fault = os.environ.get(FAULT_ENV)
        futures, pending = [], []
        for part in parts:
            if len(pending) >= SHARDS_IN_FLIGHT * self.cpus:
                _, pending = ray.wait(pending, num_returns=1)
            futures.append(_run_shard.remote(fn, box, part, fault))
            pending.append(futures[-1])
        return ray.get(futures)

    def workers(self) -> int:
        return self.cpus

    def close(self) -> None:
        if self._started and ray.is_initialized():
            ray.shutdown()
        self._started = False

    def __enter__(self) -> "RayEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
