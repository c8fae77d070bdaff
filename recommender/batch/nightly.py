"""The nightly batch: update the index incrementally, compute every article's related links, write them where a
site reads them, and keep a record of the run.

    from recommender.batch.nightly import run_batch
    from recommender.rank.policy import load_policy
    record = run_batch("content/", "recommender-index", "recommender-out", "recommender.toml",
                       site_data="site/data/related.json")
    print(record.links, record.lists["kind"])   # the run record (batch/runrecord.py: RunRecord)

Safe to rerun: unchanged articles are not embedded again and an unchanged index is not rewritten. Safe to kill:
embeddings are committed to the cache in rounds, the index is committed by its manifest, and the outputs are
renamed into place only when complete, so a killed run leaves the previous outputs intact and the next run
picks up the embeddings already done. A second run on the same index or output folder is refused (lock).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ..embed.embedder import Embedder, get_embedder, preparation_for
from ..rank.index import Index
from ..common.atomic import atomic_path
from ..common.clock import utc_now
from ..common.heap import batch_heap, keep_alive
from ..store.lock import exclusive_lock
from ..rank.policy import Policy, PolicyError
from ..embed.prepare import Preparation
from .lastrun import last_ok_run, links_key, outputs_exist
from .runrecord import RunRecord

if TYPE_CHECKING:
    from .engines import Engine
    from .relatedlists import LinkJob

# The build, engines, outputs and all-lists code are imported where a run needs them: the CLI imports this module
# for BatchError on every command, and a query by id should not pay for them.

log = logging.getLogger(__name__)

MAX_REASONS = 100
PREPARED_CACHE = Path("cache") / "prepared.sqlite"  # raw input hash -> prepared articles (see prepared_cache)


class BatchError(RuntimeError):
    """A batch run that failed; the message says why. The previous outputs are untouched."""


@dataclass
class RunOptions:
    """What one run reads, writes and runs with (run_batch's arguments, resolved)."""

    corpus: Path
    index_dir: Path
    out_dir: Path
    policy: Policy
    engine: Engine
    model: str | None = None
    backend: str = "auto"
    embedder: Embedder | None = None
    preparation: Preparation | None = None  # None: the embedder's model's (embed.embedder.preparation_for)
    gold_path: str | Path | None = None
    as_of: datetime | None = None
    batch_size: int = 32
    progress: bool = True
    site_data: Path | None = None
    allow_shrink: bool = False


def run_batch(
    corpus: str | Path,
    index_dir: str | Path,
    out_dir: str | Path,
    policy: Policy | str | Path | None = Policy(),
    *,
    links: dict | None = None,
    site_data: str | Path | None = None,
    model: str | None = None,
    backend: str = "auto",
    embedder: Embedder | None = None,
    preparation: Preparation | None = None,
    gold_path: str | Path | None = None,
    as_of: datetime | None = None,
    batch_size: int = 32,
    progress: bool = True,
    engine: str = "local",
    ray_address: str | None = None,
    allow_shrink: bool = False,
) -> RunRecord:
    """Run the batch and return its run record (also stored in the SQLite output). Raises BatchError.

    policy: a Policy, or a policy file to read (None: ./recommender.toml or the defaults); `links` replaces
    some of its [links] settings (command-line options). A policy that cannot be read or holds a wrong value
    fails the run like any other failure: recorded in the run log, outputs untouched.
    site_data: also write the links keyed by URL path (outputs.BY_PATH) to this file, e.g. a Hugo `data/`
    or Jekyll `_data/` file; the output folder itself holds files a site generator cannot read.
    engine: "local" (this process) or "ray" (embedding and all-pairs on the Ray cluster at `ray_address`, or on
    a local Ray instance); the inputs, outputs, cache, lock and run record are the same either way.
    allow_shrink: remove more than the policy's `[batch] max_shrink` share of the index (refused otherwise: a
    half-mounted content folder must not blank a site's links)."""
    from .engines import EngineError, get_engine

    index_dir, out_dir = Path(index_dir), Path(out_dir)
    record = RunRecord(started=utc_now(), status="running", corpus=str(corpus), index=str(index_dir),
                       out=str(out_dir), engine=engine)
    if site_data is not None:
        site_data = Path(site_data)
        record.site_data = str(site_data)
    try:
        policy = resolve_policy(policy, links)
    except PolicyError as exc:  # nothing started; recorded like any failed run
        fail(record, exc, out_dir)
    record.policy, record.policy_source = policy.to_dict(), policy.source
    timer = time.perf_counter()
    try:
        runner = get_engine(engine, address=ray_address)
    except EngineError as exc:  # nothing started, nothing touched
        raise BatchError(str(exc)) from exc
    record.seconds["engine"] = time.perf_counter() - timer  # starting or joining Ray; ~0 for local
    options = RunOptions(corpus=Path(corpus), index_dir=index_dir, out_dir=out_dir, policy=policy, engine=runner,
                         model=model, backend=backend, embedder=embedder, preparation=preparation,
                         gold_path=gold_path, as_of=as_of, batch_size=batch_size, progress=progress,
                         site_data=site_data, allow_shrink=allow_shrink)
    try:
        with contextlib.ExitStack() as locks:
            locks.enter_context(exclusive_lock(index_dir, what="index or batch"))
            if out_dir.resolve() != index_dir.resolve():
                locks.enter_context(exclusive_lock(out_dir, what="batch"))
            with batch_heap():  # what lives to the end kept out of full garbage collections (common.heap)
                _run(record, options)
    except Exception as exc:
        fail(record, exc, out_dir)
    finally:
        runner.close()
    return record


def resolve_policy(policy: Policy | str | Path | None, links: dict | None = None) -> Policy:
    """The run's policy: a Policy as given, or read from a file (None: ./recommender.toml or the defaults), with
    some [links] settings replaced. Raises PolicyError naming the file and the key."""
    from ..rank.policy import load_policy

    if not isinstance(policy, Policy):
        policy = load_policy(policy)
    return policy.with_links(**(links or {}))


def fail(record: RunRecord, exc: BaseException, out_dir: Path) -> None:
    """Record a failed run in the run log (unless another run holds the lock) and raise BatchError. The record
    keeps the message the user sees; only an unexpected error (a bug) keeps its exception class name."""
    from ..common.errors import InputError
    from ..embed.embedder import ModelError
    from .outputs import append_run
    from ..store.lock import LockedError
    from ..store.manifest import IndexProblem

    if isinstance(exc, (LockedError, InputError, IndexProblem, ModelError, BatchError)) and exc.args:
        message = str(exc.args[0])
    elif isinstance(exc, OSError):  # its args start with the errno; str() gives "[Errno 13] ...: 'path'"
        message = str(exc)
    else:
        message = f"{type(exc).__name__}: {exc}"
    record.status, record.ended, record.error = "failed", utc_now(), message
    if not isinstance(exc, LockedError):  # a refused run touches nothing, not even the run log
        with contextlib.suppress(Exception):
            append_run(out_dir, record)
    raise BatchError(message) from exc


def _run(record: RunRecord, options: RunOptions) -> None:
    from .build import require_articles, update_index
    from .shardread import read_with
    from .outputs import append_run, copy_site_data, update_last_run, write_outputs
    from .relatedlists import items_from_links, job_for_index
    from .output_reuse import Reuse

    o, policy, engine = options, options.policy, options.engine
    seconds = record.seconds
    timer = time.perf_counter()
    model = o.embedder or get_embedder(o.model, backend=o.backend)  # not loaded: it says how long a window is
    preparation = o.preparation or preparation_for(model)
    # the Ray engine reads, prepares and hashes in shards on its workers (recommender.batch.shardread)
    articles, hashes = read_with(engine, o.corpus, o.index_dir / PREPARED_CACHE, preparation)
    seconds["read"] = time.perf_counter() - timer
    keep_alive()
    # skipped: files, JSONL lines and related: items not read; warnings: articles read without one value
    record.skipped = sum(not p.kept for p in articles.problems)
    record.warnings = sum(p.kept for p in articles.problems)
    record.skipped_reasons = [str(p) for p in articles.problems[:MAX_REASONS]]
    record.ignored = len(articles.ignored)
    require_articles(articles, o.corpus)
    if not o.allow_shrink:
        refuse_shrink(o.index_dir, articles.articles, policy.batch.max_shrink, o.corpus)

    embedder = engine.wrap_embedder(model, model=o.model, backend=o.backend)
    built = update_index(o.index_dir, articles, embedder, preparation=preparation, model_spec=o.model,
                         batch_size=o.batch_size, round_size=engine.round_size(), progress=o.progress,
                         refit_drift=policy.batch.refit_drift, hashes=hashes, engine=engine)
    seconds.update(built.seconds)
    for name, value in built.changes.to_dict().items():  # added, changed, unchanged, removed
        setattr(record, name, value)
    record.articles, record.embedded, record.reused = built.count, built.vectors.embedded, built.vectors.reused
    record.index_rewritten = built.rewritten
    record.model, record.model_fingerprint = embedder.name, embedder.fingerprint
    record.backend = getattr(embedder, "backend", "unknown")
    keep_alive()

    timer = time.perf_counter()
    from ..evaluate.training import train_if_due

    record.training = train_if_due(o.index_dir, policy, progress=o.progress)
    seconds["train"] = time.perf_counter() - timer

    with Index.open(o.index_dir, preparation=preparation) as index:
        overrides = index.data.overrides()
        stats = index.data.manifest.stats
        record.lexical_update = stats.get("lexical_update")  # "full" (IDF fitted) or "incremental" (frozen)
        # articles added, changed or removed since the last fit, of count; a full fit past refit_at of count
        record.lexical_drift = {**(stats.get("lexical_base") or {}), "refit_at": policy.batch.refit_drift}
        record.links_key = links_key(index, policy, overrides, o.as_of, o.gold_path)
        previous = last_ok_run(o.out_dir)
        if previous and previous.get("links_key") == record.links_key and outputs_exist(o.out_dir):
            # nothing that decides a link changed since the last good run: its outputs stand as they are
            for key in ("links", "pinned_links", "articles_without_links", "overrides", "evaluation", "by_path",
                        "drafts_held_back", "targets_left_out", "lists_state"):
                setattr(record, key, previous.get(key))
            record.outputs_reused = True
            if o.site_data is not None:
                copy_site_data(o.out_dir, o.site_data)
            record.status, record.ended = "ok", utc_now()
            for name, value in seconds.items():
                seconds[name] = round(value, 3)
            append_run(o.out_dir, record)
            log.info("nothing that decides the links changed since the last run: outputs kept as they are")
            return
        timer = time.perf_counter()
        infos = index.data.store.all()
        # the full-precision vectors of the build (row order = index order), not the index's quantised copy
        # an approximate index (large corpora) gives the dense candidates, re-scored exactly on these vectors
        learned = index.learned_model(policy)
        job = job_for_index(index, built.matrix, policy, overrides=overrides, as_of=o.as_of, learned=learned)
        keep_alive()
        record.ranking = "default" if learned is None else getattr(learned, "kind", "learned")
        record.drafts_held_back = job.facts.held_back(policy)
        # articles of each kind the [links] targets keep out of every list (curated stubs, no URL, other domains)
        record.targets_left_out = job.facts.left_out(policy)
        links, plan = related_lists(job, articles.articles, built, index, o.out_dir, record, as_of=o.as_of,
                                    progress=o.progress, engine=engine)
        reuse = Reuse.of(plan, previous, o.out_dir)  # what the outputs may copy from the last run's
        seconds["related"] = time.perf_counter() - timer
        keep_alive()  # every list's links
        from ..rank.storedlists import keep_lists  # what a query by id then reads (recommender.rank.storedlists)

        record.stored_lists = keep_lists(index.data, policy, overrides, links, fresh=record.lists["fresh_statistics"])
        items = items_from_links(links, infos)
        keep_alive()  # their output records
        record.links = sum(len(chosen) for chosen in links)
        record.pinned_links = sum(link.pinned for chosen in links for link in chosen)
        record.articles_without_links = sum(1 for chosen in links if not chosen)
        record.overrides = len(overrides.items)

        timer = time.perf_counter()
        record.evaluation = evaluate_curated(index, o.gold_path, policy)
        seconds["evaluate"] = time.perf_counter() - timer

    timer = time.perf_counter()
    record.status, record.ended = "ok", utc_now()
    write_outputs(o.out_dir, items, record, site_data=o.site_data, infos=infos, site=policy.site, reuse=reuse)
    seconds["write"] = time.perf_counter() - timer
    for name, value in seconds.items():
        seconds[name] = round(value, 3)
    record.ended = utc_now()
    update_last_run(o.out_dir, record)  # the stored record gets the write time and the true end


# An approximate vector index (IVF, above store.ann.FLAT_MAX articles) finds dense pools that are not the exact top
# of a row, so no night can follow them (incremental.plan would rank every list again): its runs keep no lists
# state, whose pool records would cost about 17 KB a list (17 GB at 1M articles) for nothing.
NO_STATE_APPROXIMATE = "approximate vector index (its dense pools are not exact tops): every list, no lists state"


def related_lists(job: LinkJob, articles, built, index: Index, out_dir: Path, record: RunRecord, *, as_of,
                  progress: bool, engine: Engine) -> tuple[list, object]:
    """Every article's links, and the incremental plan (None for a full run without a state): with the local
    engine only the lists a change can reach are ranked again
    (recommender.batch.incremental; the state is kept in the output folder); with another engine, or over an
    approximate vector index, all of them."""
    from . import head_pools, incremental
    from .relatedlists import all_links

    if engine.name != "local" or job.ann is not None:
        why = f"engine {engine.name}" if engine.name != "local" else NO_STATE_APPROXIMATE
        record.lists = {"kind": "full", "recomputed": job.count, "reasons": {why: job.count},
                        "fresh_statistics": True}
        (out_dir / incremental.STATE_FILE).unlink(missing_ok=True)  # its lists would no longer match
        return all_links(job, progress=progress, engine=engine), None
    policy = job.policy
    day = None
    if policy.links.max_age_days is not None or policy.recency.half_life_days > 0:
        day = (as_of or datetime.now(timezone.utc)).date().isoformat()
    # the learned model's digest too: lists ranked by a model are not a base for the default ranking's updates
    # (what it scores with: the same whether read from its JSON or from the index's arrays)
    from .learned_reach import model_digest

    from ..common.source import code_digest  # other code may rank differently: its lists are no base either

    key = incremental.settings_key(policy, [index.data.manifest.model.get("fingerprint"), model_digest(job.learned),
                                            code_digest()], job.lexical, day)
    ids = [a.id for a in articles]
    signatures = [incremental.signature(a, h) for a, h in zip(articles, built.hashes)]
    if job.graph is not None:  # an article whose graph facts changed counts as changed
        from .learned_reach import graph_signatures

        signatures = graph_signatures(job.graph, ids, signatures)
    overrides = [o.to_dict() for o in job.overrides.items]
    links, plan, frozen = incremental.compute_links(job, ids, signatures, out_dir / incremental.STATE_FILE, key,
                                                    overrides, progress=progress)
    record.lists = {"kind": plan.kind, "recomputed": int(plan.recompute.sum()), "reasons": plan.reasons,
                    "fresh_statistics": plan.kind == "full" and frozen.from_scratch}
    log.info("related lists (%s): %d of %d ranked again", plan.kind, record.lists["recomputed"], len(ids))
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / incremental.STATE_FILE) as tmp:
        record.lists_state = incremental.save_state(tmp, key=key, ids=ids, signatures=signatures, frozen=frozen,
                                                    links=plan.link_arrays, overrides=overrides, k=policy.links.k,
                                                    lexical_heads=head_pools.current_heads(job),
                                                    window_pools=job.learned is not None)
    return links, plan


def refuse_shrink(index_dir: Path, articles, max_share: float, corpus: Path) -> None:
    """Raise BatchError when the corpus lacks more than max_share of the articles the index holds: a content
    folder that is half mounted or half copied would otherwise remove them, and blank their links."""
    from .build import current_manifest
    from ..store.metadata import MetadataStore

    manifest = current_manifest(index_dir)
    if manifest is None or "metadata" not in manifest.files:
        return  # no index yet: nothing to lose
    try:
        with MetadataStore(index_dir / manifest.files["metadata"].name) as store:
            previous = store.ids()
    except Exception:  # noqa: BLE001 - an unreadable index is rebuilt: nothing to lose
        return
    if not previous:
        return
    present = {a.id for a in articles}
    removed = sum(1 for article_id in previous if article_id not in present)
    if removed > max_share * len(previous):
        raise BatchError(
            f"{corpus}: this run would remove {removed} of the {len(previous)} indexed articles "
            f"({removed / len(previous):.0%}, more than [batch] max_shrink = {max_share:.0%}); the previous "
            f"index and outputs are kept. Is the content folder complete? --allow-shrink removes them on purpose")


def evaluate_curated(index: Index, gold_path: str | Path | None, policy: Policy = Policy()) -> dict | None:
    """The system's (with and without overrides) and TF-IDF's figures against the curated lists in the corpus
    (or a gold file), if any."""
    from ..common.errors import InputError
    from ..evaluate.evaluation import evaluate_index
    from ..evaluate.gold import load_gold_jsonl

    gold = load_gold_jsonl(gold_path) if gold_path else index.data.store.curated()
    if not gold:
        return None
    try:
        evaluation = evaluate_index(index, gold, gold_source=str(gold_path or "curated related: lists"),
                                    baselines=("tfidf",), policy=policy, dense=False, learned=False)
    except InputError as exc:  # curated links that all point outside the corpus
        log.warning("evaluation skipped: %s", exc)
        return None
    keys = ("recall@10", "precision@10", "mrr", "map", "ndcg@10")
    return {"queries": evaluation.queries, "gold": evaluation.gold_source,
            **{s.system: {k: round(s.overall[k], 4) for k in keys if k in s.overall} for s in evaluation.systems}}
