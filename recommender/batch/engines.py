"""Where the batch's heavy phases run: in this process (the local engine) or on a Ray cluster (the Ray engine).

An engine does three things for the batch: it may wrap the embedder (the Ray engine embeds on Ray workers, with
the same model name, fingerprint and dimension, so the vector cache is shared between engines), it maps a
module-level function over blocks of query rows (the all-pairs phase), and it maps one over shards of data
(`map_shards`: the Ray engine reads and hashes the corpus, and fits the lexical index, in shards). The vector
cache, the index files, the outputs and the lock stay in the driver, whatever the engine.

    engine = get_engine("ray", address="auto")   # or get_engine() for the local engine
    try:
        parts = engine.map_blocks(fn, shared, n, block)   # [fn(shared, 0, block), fn(shared, block, 2*block), ...]
    finally:
        engine.close()

Ray is imported only by recommender.batch.ray_engine, and only when the Ray engine is asked for.
"""

from __future__ import annotations

from typing import Callable, Iterable, Protocol, Sequence

from ..common.blocks import map_blocks_here
from ..common.errors import InputError
from ..embed.embedder import Embedder

ENGINES = ("local", "ray")
RAY_EXTRA_MISSING = "--engine ray needs the ray extra: pip install 'recommender[ray]'"

# Articles per vectorize round (each round is committed to the vector cache before the next starts).
LOCAL_ROUND = 256


class EngineError(InputError):
    """An engine that cannot be started; the message (one line) says why."""


class Engine(Protocol):
    name: str

    def wrap_embedder(self, embedder: Embedder, *, model: str | None, backend: str) -> Embedder: ...

    def round_size(self) -> int: ...

    def map_blocks(self, fn: Callable, shared, n: int, block: int,
                   progress: Callable[[int], object] | None = None) -> list:
        """[fn(shared, start, stop) for each block of range(n)], in block order; `progress(rows)` after each."""
        ...

    def map_shards(self, fn: Callable, parts: Iterable, common=None) -> list:
        """[fn(common, part) for part in parts], in order: each part goes to one task, `common` to every worker
        once. `parts` may be a generator, drawn only as tasks are started."""
        ...

    def workers(self) -> int:
        """CPUs the engine runs shards on."""
        ...

    def close(self) -> None: ...


class LocalEngine:
    """Everything in this process, one block after the other (the phases use the machine's cores themselves)."""

    name = "local"

    def wrap_embedder(self, embedder: Embedder, *, model: str | None = None, backend: str = "auto") -> Embedder:
        return embedder

    def round_size(self) -> int:
        return LOCAL_ROUND

    def map_blocks(self, fn: Callable, shared, n: int, block: int,
                   progress: Callable[[int], object] | None = None) -> list:
        return map_blocks_here(fn, shared, n, block, progress)

    def map_shards(self, fn: Callable, parts: Iterable, common=None) -> list:
        return [fn(common, part) for part in parts]

    def workers(self) -> int:
        return 1

    def close(self) -> None:
        pass

    def __enter__(self) -> "LocalEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def get_engine(name: str = "local", address: str | None = None, num_cpus: int | None = None) -> Engine:
    """The engine called `name`. For "ray": connect to the cluster at `address` ("auto": the one this machine
    belongs to), or start a local Ray instance with `num_cpus` CPUs when no address is given."""
    if name == "local":
        if address:
            raise EngineError("--ray-address is only for --engine ray")
        return LocalEngine()
    if name == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise EngineError(RAY_EXTRA_MISSING) from None
        from .ray_engine import RayEngine

        return RayEngine(address=address, num_cpus=num_cpus)
    raise EngineError(f"unknown engine {name!r} ({', '.join(ENGINES)})")


__all__: Sequence[str] = ("ENGINES", "Engine", "EngineError", "LocalEngine", "get_engine")
