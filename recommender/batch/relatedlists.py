"""Every article's related links at once (the batch's main step), under the link policy and the overrides.

The work is cut into blocks of query rows; `link_block(job, start, stop)` computes one block from a `LinkJob`
(plain arrays and settings, nothing open), so an engine can run blocks anywhere and in any order and the
result is the same: the local engine runs them in a loop, the Ray engine as Ray tasks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from ..store.lexindex import LexicalIndex
from ..rank.linking import RuleColumns, Link, choose_links, order_candidates
from .outputs import ArticleLinks
from ..rank.overrides import OverrideSet
from ..rank.policy import Policy
from ..common.progress import progress_bar
from ..rank.results import Related
from ..rank.ranking import QUERY_BLOCK
from . import margin_follow
from .copy_reach import above_threshold, record_copies


@dataclass
class LinkJob:
    vectors: np.ndarray  # full-precision article vectors, row order
    lexical: LexicalIndex | None
    policy: Policy
    facts: RuleColumns
    overrides: OverrideSet = field(default_factory=OverrideSet)
    as_of: datetime | None = None
    ann: object = None  # an approximate vector index for the dense candidates of a large corpus; None = exact
    frozen: object = None  # corpus statistics of the last full rebuild (recommender.batch.incremental); None = fresh
    learned: object = None  # the learned ranking (recommender.rank.learned.LearnedModel) in use; None = the default
    site_facts: object = None  # recommender.rank.signals.ArticleFeatures, with learned or tags (the shared-tag pool)
    graph: object = None  # recommender.rank.graph_signals.LinkGraphs, with learned
    windows: object = None  # recommender.rank.windows.WindowScores over the stored windows; None = no window part
    window_ann: object = None  # recommender.store.windowann.WindowANN (approximate); None = exact window search
    _ranker: object = field(default=None, repr=False, compare=False)

    @property
    def count(self) -> int:
        return len(self.vectors)

    def use_frozen(self, frozen) -> None:
        """Rank with these frozen corpus statistics from now on (the ranker built with the previous ones is
        dropped)."""
        self.frozen, self._ranker = frozen, None

    def ranker(self):
        """The job's ranker (rank.wiring.build_ranker, as a query's), over the build's full-precision vectors with
        the batch's frozen statistics; a learned ranking's voters are recorded for the next incremental run."""
        if self._ranker is None:
            from ..rank.wiring import build_ranker
            from ..store.compiledtopk import use_compiled
            from ..store.resident import hold_in_memory

            use_compiled()  # the lexical heads' top-k compiled, where numba is installed (the same numbers)
            hold_in_memory()  # the arrays every list reads at random, in memory while they fit (store.resident)

            record, margin = None, 0.0
            if self.frozen is not None and self.learned is not None:  # each list's voters, for the next run
                from functools import partial

                from .learned_reach import recording
                from .window_reach import MARGIN as margin  # what the learned reach follows windows by

                record = partial(recording, frozen=self.frozen)
            elif self.frozen is not None and self.window_ann is not None:  # followed too (window_reach, ann_reach)
                from .window_reach import MARGIN as margin
            self._ranker = build_ranker(self.vectors, self.lexical, self.policy.ranking, ann=self.ann,
                                        windows=self.windows, window_ann=self.window_ann, features=self.site_facts,
                                        model=self.learned, graph=self.graph, frozen=self.frozen,
                                        wrap_rescorer=record, window_margin=margin)
        return self._ranker


def job_for_index(index, vectors: np.ndarray, policy: Policy, *, overrides: OverrideSet | None = None,
                  as_of: datetime | None = None, learned=None, frozen=None, graph=None) -> LinkJob:
    """The job the nightly batch ranks every list with, over an opened index (recommender.rank.index.Index) and
    the build's full-precision vectors: the approximate vector index for the dense candidates of a large corpus,
    the stored windows (kept in memory) and their approximate index when there is one, the facts the learned
    ranking or the shared-tag pool read. learned: the model in use (None: the default ranking); graph: its graph
    facts when the caller made them (else the index's, on these vectors)."""
    from ..store.resident import hold_in_memory

    hold_in_memory()  # this process ranks many lists: what each reads at random in memory while it fits
    data = index.data
    ann = data.vectors if getattr(data.vectors, "approximate", False) else None
    if learned is not None and graph is None:
        graph = data.link_graphs(learned, vectors=vectors)
    if learned is not None and graph is not None:
        fill_dense_stats(graph)
    return LinkJob(vectors=vectors, lexical=data.lexical, policy=policy, facts=held_columns(data.rule_columns()),
                   overrides=overrides if overrides is not None else data.overrides(), as_of=as_of, ann=ann,
                   frozen=frozen, learned=learned,
                   site_facts=held_columns(data.article_features()) if learned is not None or data.tagged() else None,
                   graph=graph if learned is not None else None, windows=data.window_scores(keep_copy=True),
                   window_ann=data.window_ann(approximate_only=True))


def held_columns(columns):
    """The per-article columns a list reads (linking.RuleColumns, signals.ArticleFeatures: a dataclass of arrays
    and sparse matrices), each mapped one held in memory while the process's budget lasts (store.resident): a list
    reads a few hundred candidates' values in each, at random. A new object; the index's own is left as it is."""
    from dataclasses import fields, replace

    from ..rank.mappedarrays import MappedCSR
    from ..store.resident import held

    changes = {}
    for f in fields(columns):
        value = getattr(columns, f.name)
        if isinstance(value, np.ndarray):
            changes[f.name] = held(value)
        elif isinstance(value, MappedCSR):
            changes[f.name] = MappedCSR(held(value.data), held(value.indices), held(value.indptr), value.shape)
    return replace(columns, **changes) if any(changes[k] is not getattr(columns, k) for k in changes) else columns


def fill_dense_stats(graph) -> None:
    """Every article's cosine statistics (graph_signals.LinkGraphs.dense_stats), when the graph was built here and
    not read from the index's stored arrays: a batch reads nearly every row's as some list's candidate, and computed
    in blocks of rows they cost a few seconds at 1M articles, where each list's few hundred candidates cost about
    0.6 ms (the same statistics up to float32 rounding: how many rows a product holds moves its last bit)."""
    stats = graph.dense_stats
    if stats.flags.writeable and graph.vectors.shape[1] and np.isnan(stats[:, 0]).any():
        graph.fill_dense_stats()


def link_block(job: LinkJob, start: int, stop: int) -> list[list[Link]]:
    """The chosen links of rows start..stop-1."""
    return link_rows(job, np.arange(start, stop))


def link_rows(job: LinkJob, rows: np.ndarray) -> list[list[Link]]:
    """The chosen links of the given rows, in their order."""
    ranker = job.ranker()
    standing = ranker.standing() if job.policy.links.min_reverse is not None and ranker.rescorer is None else None
    out = []
    for cand in ranker.score_rows(rows):
        if job.frozen is not None and cand.pools is not None:  # for the next night's reach
            job.frozen.pool_bounds(cand.query, cand.pools)
        margin = margin_follow.wanted(job, cand, standing)  # ranked entries beyond k, for the next night's R2
        ordered = order_candidates(cand, job.facts, ranker.vectors, job.policy, job.overrides, as_of=job.as_of,
                                   limit=job.policy.links.k + (margin_follow.MARGIN_LINKS if margin else 0),
                                   standing=standing)
        out.append(choose_links(ordered, job.policy))
        if margin:
            margin_follow.record(job, cand, ordered)
        if job.frozen is not None and cand.query >= 0:  # what the next night's R4 reads (copy_reach)
            job.frozen.above[int(cand.query)] = above_threshold(cand, out[-1], job.policy)
            record_copies(job.frozen, cand)  # a full run: the copy graph from the list's candidates
    return out


def all_links(job: LinkJob, *, block: int = QUERY_BLOCK, progress: bool = False, engine=None) -> list[list[Link]]:
    """Links of every article, in row order. The blocks run on `engine` (recommender.batch.engines; default the local
    engine, one after the other in this process); every engine gives the same result."""
    from .engines import LocalEngine

    engine = engine or LocalEngine()
    with progress_bar(total=job.count, desc="related lists", unit="article", enabled=progress) as bar:
        parts = engine.map_blocks(link_block, job, job.count, block, progress=bar.update)
    return [links for part in parts for links in part]


def items_from_links(links: list[list[Link]], infos) -> list[ArticleLinks]:
    """Output records; `infos` are the index's ArticleInfo in row order."""
    items = []
    for info, chosen in zip(infos, links):
        related = tuple(
            Related(id=infos[link.row].id, score=None if math.isnan(link.score) else round(link.score, 6),
                    title=infos[link.row].title, url=infos[link.row].url, published=infos[link.row].published,
                    source=infos[link.row].source, kind=infos[link.row].kind, pinned=link.pinned)
            for link in chosen
        )
        items.append(ArticleLinks(id=info.id, title=info.title, url=info.url, published=info.published,
                                  source=info.source, related=related))
    return items
