"""Signals of a (query, candidate) pair, all from stored data (no model): what the learned ranking weighs.

    facts = SiteFacts.from_store(index.store)
    X = pair_signals(cand, facts)          # one row per candidate, columns SIGNALS

Signals:

* ``dense_z``, ``lexical_z``, ``mention_z``: the hybrid ranker's per-query z-scores (see `ranking.py`)
* ``title_overlap``: Jaccard overlap of the two titles' words (three letters or more)
* ``tag_overlap``: shared tags/topics, each weighted by its rarity (IDF: log(n / articles with the tag))
* ``same_author``: 1 when the two share an author
* ``date_gap``: log(1 + days between the two publication dates); ``dates_known`` says both have one, and
  ``candidate_older`` that the candidate was published first
* ``same_source``: 1 when both come from one source (publisher, or file of origin)
* ``path_proximity``: share of URL-path (or id) segments the two have in common from the start; ``path_parent``:
  one is the other's parent or child
* ``same_page_type``: 1 when both have the same page type
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import urlsplit

import numpy as np

from .allpairs import ArticleFacts

SIGNALS = ("dense_z", "lexical_z", "mention_z", "title_overlap", "tag_overlap", "same_author", "date_gap",
           "dates_known", "candidate_older", "same_source", "path_proximity", "path_parent", "same_page_type")
_WORD = re.compile(r"[^\W\d_][\w'-]{2,}", re.U)


def title_words(title: str) -> frozenset[str]:
    return frozenset(w.lower().replace("'", "") for w in _WORD.findall(title or ""))


def path_segments(url: str | None, article_id: str) -> tuple[str, ...]:
    """The URL's path segments (else the id's), lower-cased, without an index/extension tail."""
    path = urlsplit(url).path if url and "://" in url else article_id
    parts = [p for p in path.lower().split("/") if p]
    if parts and re.fullmatch(r"index\.\w+", parts[-1]):
        parts.pop()
    if parts and "." in parts[-1]:
        parts[-1] = parts[-1].rsplit(".", 1)[0]
    return tuple(parts)


@dataclass
class SiteFacts:
    """Per-row facts the signals read, in row order (built once per index, from the metadata store)."""

    titles: list[frozenset[str]]
    tags: list[frozenset[str]]
    tag_idf: dict[str, float]
    authors: list[frozenset[str]]
    days: np.ndarray
    sources: np.ndarray
    paths: list[tuple[str, ...]]
    page_types: np.ndarray  # int code, -1 none

    @classmethod
    def from_infos(cls, infos: Sequence) -> "SiteFacts":
        n = len(infos)
        tags = [frozenset(t.lower() for t in getattr(i, "topics", ()) or ()) for i in infos]
        df: dict[str, int] = {}
        for ts in tags:
            for t in ts:
                df[t] = df.get(t, 0) + 1
        basic = ArticleFacts.from_lists([i.source for i in infos], [i.published for i in infos])
        codes: dict[str, int] = {}
        page_types = np.array([codes.setdefault(i.page_type, len(codes)) if getattr(i, "page_type", None) else -1
                               for i in infos], dtype=np.int64)
        return cls(
            titles=[title_words(i.title) for i in infos],
            tags=tags,
            tag_idf={t: math.log(n / c) for t, c in df.items()},
            authors=[frozenset(a.lower() for a in getattr(i, "authors", ()) or ()) for i in infos],
            days=basic.days,
            sources=basic.sources,
            paths=[path_segments(i.url, i.id) for i in infos],
            page_types=page_types,
        )


def _shared_prefix(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def pair_signals(query: int, rows: np.ndarray, z: dict[str, np.ndarray], facts: SiteFacts) -> np.ndarray:
    """The signal matrix (len(rows) x len(SIGNALS)) of one query's candidates; query -1 (new text) has only
    the score signals."""
    out = np.zeros((len(rows), len(SIGNALS)), dtype=np.float32)
    for col, name in enumerate(("dense", "lexical", "mention")):
        if name in z:
            out[:, col] = z[name]
    if query < 0 or not len(rows):
        return out
    qt, qtags, qauth, qpath = facts.titles[query], facts.tags[query], facts.authors[query], facts.paths[query]
    for i, r in enumerate(rows):
        r = int(r)
        ct = facts.titles[r]
        if qt and ct:
            out[i, 3] = len(qt & ct) / len(qt | ct)
        if qtags:
            shared = qtags & facts.tags[r]
            if shared:
                out[i, 4] = sum(facts.tag_idf.get(t, 0.0) for t in shared)
        if qauth and qauth & facts.authors[r]:
            out[i, 5] = 1.0
        cpath = facts.paths[r]
        if qpath and cpath:
            common = _shared_prefix(qpath, cpath)
            out[i, 10] = common / max(len(qpath), len(cpath))
            out[i, 11] = float(common == min(len(qpath), len(cpath)) and abs(len(qpath) - len(cpath)) == 1)
    qday = facts.days[query]
    cdays = facts.days[rows]
    known = ~np.isnan(cdays) & (not math.isnan(qday))
    gap = np.where(known, np.abs(np.nan_to_num(cdays) - (0.0 if math.isnan(qday) else qday)), 0.0)
    out[:, 6] = np.log1p(gap)
    out[:, 7] = known
    out[:, 8] = known & (np.nan_to_num(cdays) < (0.0 if math.isnan(qday) else qday))
    qsrc = facts.sources[query]
    out[:, 9] = (facts.sources[rows] == qsrc) & (qsrc >= 0)
    qpt = facts.page_types[query]
    out[:, 12] = (facts.page_types[rows] == qpt) & (qpt >= 0)
    return out
