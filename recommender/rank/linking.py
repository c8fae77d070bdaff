"""From scored candidates to the links a site shows, under the policy: filters (source, topic, date direction,
age), adjustments (same-topic bonus, recency half-life), near-duplicate collapse, optional MMR diversity,
editorial overrides (pins first, blocks never), then the minimum score and k.

`order_candidates` gives the whole ordered list (what evaluation ranks); `choose_links` cuts it to the links.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Sequence
from urllib.parse import urlsplit

import numpy as np

from ..ingest.text import url_host
from ..store.compiledtopk import ACTIVE
from .allpairs import SourceDays
from .overrides import OverrideSet
from .policy import TARGETS, Policy
from .ranking import Candidates

DIVERSITY_POOL = 50  # MMR and duplicate collapse look at this many of the best candidates (at least 3k)
TITLE_COPY_COSINE = 0.8  # two items with one title (3+ words) and text this close are copies of one story
# What an article is as a link target (RuleColumns.pages): with a URL; without one but read from a Markdown file or a
# JSONL feed, whose id is its page's path (Hugo's address of content/ID.md); without one and read from a plain
# text file, which no site generator publishes as a page; a curated stub, known only from a related: list.
WITH_URL, PAGE_AT_ID, NO_PAGE, STUB = 0, 1, 2, 3
PLAIN_TEXT_SUFFIXES = (".txt", ".text")
PAGE_SUFFIX = re.compile(r"\.(?:html?|shtml|php|aspx?|jsp|md|txt|xml)$")
NAME_PART = re.compile(r"[^\W\d]\w*")  # a part of a dotted API name: an identifier (a digit first: a section)


@dataclass
class RuleColumns:
    """Every article's columns the link rules read (id, source, day, topics, draft, title codes, kind of link
    target, host, API name), in row order."""

    ids: list[str]
    sources: np.ndarray  # int code, -1 unknown
    days: np.ndarray  # publication day number, NaN unknown
    topics: list[frozenset[str]]
    row_of: dict[str, int] = field(default_factory=dict)
    drafts: np.ndarray | None = None  # bool: unpublished articles, never linked to unless the policy says so
    title_codes: np.ndarray | None = None  # int: one code per distinct title of 3+ words, -1 for the others
    name_codes: np.ndarray | None = None  # int: one code per distinct normalised title (any length)
    pages: np.ndarray | None = None  # int8: WITH_URL, PAGE_AT_ID, NO_PAGE or STUB (what it is as a link target)
    hosts: Sequence[str | None] | None = None  # each article's URL host (lower case, no www.), None without URL
    api_names: np.ndarray | None = None  # int: one code per dotted API name (api_name_codes), -1 for other pages
    _kinds: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_infos(cls, infos: Sequence, topics: Sequence[Sequence[str]] | None = None) -> "RuleColumns":
        basic = SourceDays.from_lists([i.source for i in infos], [i.published for i in infos])
        topics = [frozenset(t.lower() for t in ts) for ts in (topics or [[] for _ in infos])]
        ids = [i.id for i in infos]
        drafts = np.array([bool(getattr(i, "draft", False)) for i in infos], dtype=bool)
        titles = [getattr(i, "title", "") for i in infos]
        return cls(ids=ids, sources=basic.sources, days=basic.days, topics=topics,
                   row_of={x: r for r, x in enumerate(ids)}, drafts=drafts if drafts.any() else None,
                   title_codes=title_codes(titles), name_codes=title_codes(titles, min_words=1),
                   pages=np.array([page_kind(i) for i in infos], dtype=np.int8),
                   hosts=[url_host(getattr(i, "url", None)) for i in infos], api_names=api_name_codes(infos))

    def held_back(self, policy: Policy) -> int:
        """How many articles the policy keeps out of every list because they are unpublished drafts."""
        return 0 if self.drafts is None or policy.links.include_drafts else int(self.drafts.sum())

    def target_kinds(self, policy: Policy, *, hosts: bool = True) -> np.ndarray | None:
        """Each article's kind as a link target, an index into policy.TARGETS: "stubs" for a curated stub;
        "no-url" for an article with neither a URL nor a page at its id (a plain-text file) when the site is keyed
        by URL (any other [site] key gives every article read from a file a page); "other-domains" for a URL
        on another host than the site's ([site] base_url, else the most common host of the articles read from
        files); "site" for the rest. hosts=False: every URL counts as the site's (when both are allowed)."""
        if self.pages is None:
            return None
        cache_key = (policy.site.key, policy.site.host, hosts)
        if cache_key not in self._kinds:
            kinds = np.full(len(self.pages), TARGETS.index("site"), dtype=np.int8)
            kinds[self.pages == STUB] = TARGETS.index("stubs")
            if policy.site.key == "url":
                kinds[self.pages == NO_PAGE] = TARGETS.index("no-url")
            if hosts and self.hosts is not None:
                host_of = np.array([h or "" for h in self.hosts], dtype=object)
                own = (self.pages == WITH_URL)
                site = policy.site.host or most_common(host_of[own])
                if site is not None:
                    kinds[own & (host_of != site)] = TARGETS.index("other-domains")
            self._kinds[cache_key] = kinds
        return self._kinds[cache_key]

    def unlinkable(self, policy: Policy) -> np.ndarray | None:
        """True for the articles the policy's [links] targets keep out of every list; None when there are none."""
        allowed = set(policy.links.targets)
        if allowed >= {"site", "other-domains", "no-url", "stubs"}:
            return None
        cache_key = ("unlinkable", frozenset(allowed), policy.site.key, policy.site.host)
        if cache_key not in self._kinds:  # once per policy, not once per list
            kinds = self.target_kinds(policy, hosts=not allowed >= {"site", "other-domains"})
            mask = None if kinds is None else ~np.isin(kinds, [TARGETS.index(t) for t in allowed])
            self._kinds[cache_key] = mask if mask is not None and mask.any() else None
        return self._kinds[cache_key]

    def hidden(self, policy: Policy) -> np.ndarray | None:
        """True for the articles no list links to under the policy (drafts unless included, and what
        `unlinkable` keeps out); None when there are none."""
        cache_key = ("hidden", policy.links.include_drafts, frozenset(policy.links.targets), policy.site.key,
                     policy.site.host)
        if cache_key not in self._kinds:
            hidden = self.drafts if self.drafts is not None and not policy.links.include_drafts else None
            unlinkable = self.unlinkable(policy)
            if unlinkable is not None:
                hidden = unlinkable if hidden is None else (hidden | unlinkable)
            self._kinds[cache_key] = hidden
        return self._kinds[cache_key]

    def left_out(self, policy: Policy) -> dict[str, int]:
        """How many articles of each kind the [links] targets keep out of every list (the run record)."""
        kinds = self.target_kinds(policy)
        if kinds is None:
            return {}
        return {t: int((kinds == TARGETS.index(t)).sum()) for t in TARGETS if t not in policy.links.targets}


def page_kind(info) -> int:
    """WITH_URL, PAGE_AT_ID, NO_PAGE or STUB for an article (an Article or the index's ArticleInfo)."""
    if getattr(info, "kind", "") == "related":
        return STUB
    if getattr(info, "url", None):
        return WITH_URL
    plain = getattr(info, "kind", "") == "text" or getattr(info, "path", "").lower().endswith(PLAIN_TEXT_SUFFIXES)
    return NO_PAGE if plain else PAGE_AT_ID


def most_common(values: np.ndarray) -> str | None:
    names, counts = np.unique([v for v in values if v], return_counts=True)
    return str(names[int(np.argmax(counts))]) if len(names) else None


@dataclass
class Link:
    row: int
    score: float  # NaN for a pinned link the ranking did not find
    pinned: bool = False
    # the link seen from the linked article: the two articles' embedding cosine in standard deviations above the
    # linked article's own average (NaN when not computed); [links] min_reverse
    reverse: float = float("nan")


def order_candidates(cand: Candidates, facts: RuleColumns, vectors: np.ndarray, policy: Policy,
                     overrides: OverrideSet | None = None, *, as_of: datetime | None = None,
                     query_vector: np.ndarray | None = None, limit: int | None = None,
                     standing=None) -> list[Link]:
    """Every allowed candidate in final order: pins, then the ranked rest (only the first `limit` ranked ones
    when given: all the links step needs). With `standing` (HybridRanker.standing, a corpusstats.Standing; or
    (mean, deviation) arrays over every row) and a [links] min_reverse, each ranked link carries its reverse
    z-score, which choose_links reads."""
    links = policy.links
    q = cand.query
    rows, score = cand.rows, cand.score.astype(np.float64).copy()
    keep = np.ones(len(rows), dtype=bool)
    query_id = facts.ids[q] if q >= 0 else None
    blocked = overrides.blocked(query_id) if overrides and query_id else (overrides.blocked("") if overrides else set())
    if blocked:
        keep &= np.array([facts.ids[r] not in blocked for r in rows], dtype=bool)
    hidden = facts.hidden(policy)
    if hidden is not None:
        keep &= ~hidden[rows]
    if q >= 0:
        if links.same_source == "exclude" and facts.sources[q] >= 0:
            keep &= facts.sources[rows] != facts.sources[q]
        mine = facts.days[q]
        with np.errstate(invalid="ignore"):
            if links.direction == "older":
                keep &= ~(facts.days[rows] > mine)
            elif links.direction == "newer":
                keep &= ~(facts.days[rows] < mine)
        if links.same_topic != "allow" and facts.topics[q]:
            shared = np.array([bool(facts.topics[q] & facts.topics[r]) for r in rows], dtype=bool)
            if links.same_topic == "only":
                keep &= shared
            elif links.same_topic == "exclude":
                keep &= ~shared
            else:
                score += links.topic_bonus * shared
        half_life = policy.recency.half_life_days
        if half_life > 0 and not np.isnan(mine):
            gap = np.abs(facts.days[rows] - mine)
            decay = np.where(np.isnan(gap), 1.0, 0.5 ** (np.nan_to_num(gap) / half_life))
            score = np.where(score > 0, score * decay, score)
    if links.max_age_days is not None:
        today = (as_of or datetime.now(timezone.utc)).timestamp() / 86400.0
        with np.errstate(invalid="ignore"):
            keep &= ~(today - facts.days[rows] > links.max_age_days)
    rows, score = rows[keep], score[keep]
    order = np.lexsort((rows, -score))
    rows, score = rows[order], score[order]
    pool = max(DIVERSITY_POOL, 3 * links.k)
    head_rows, head_score = collapse_duplicates(rows[:pool], score[:pool], vectors, facts, policy.duplicates.threshold,
                                                query_vector if query_vector is not None else
                                                (vectors[q] if q >= 0 else None), q)
    if policy.diversity.mmr_lambda < 1.0:
        head_rows, head_score = mmr(head_rows, head_score, vectors, policy.diversity.mmr_lambda)
    # the ranked links as arrays until the few kept are known: a Link object only for those
    tail = len(rows) if limit is None else 2 * max(pool, limit)  # room for the titles dropped below
    ranked_rows = np.concatenate([np.asarray(head_rows, np.int64), rows[pool:tail].astype(np.int64)])
    ranked_score = np.concatenate([head_score, score[pool:tail]])
    if facts.name_codes is not None and len(ranked_rows):  # one list never shows one title twice: the first stays
        first = first_of_each_title(facts.name_codes[ranked_rows])
        if len(first) < len(ranked_rows):
            ranked_rows, ranked_score = ranked_rows[first], ranked_score[first]
    pins = overrides.pinned(query_id) if overrides and query_id else []
    found = dict(zip(ranked_rows.tolist(), ranked_score.tolist())) if pins else {}
    # the reverse rule was measured on the default ranking: not for a TF-IDF ranking (dense and window weights 0);
    # the callers give no standing for the learned one (its score is its own, calibrated to a logit)
    default = policy.ranking.dense + policy.ranking.window > 0
    reverse = None
    if standing is not None and links.min_reverse is not None and default and "dense" in cand.raw and \
            len(ranked_rows):
        reverse = reverse_z(ranked_rows, cand, standing).tolist()
        if limit is not None:  # the links step: those below the reverse minimum make room for the next ones
            kept = [i for i, value in enumerate(reverse) if not value < links.min_reverse]
            ranked_rows, ranked_score = ranked_rows[kept], ranked_score[kept]
            reverse = [reverse[i] for i in kept]
    if limit is not None:
        ranked_rows, ranked_score = ranked_rows[:limit], ranked_score[:limit]
    ranked = [Link(r, s) for r, s in zip(ranked_rows.tolist(), ranked_score.tolist())]
    if reverse is not None:
        for link, value in zip(ranked, reverse):
            link.reverse = value
    if not pins:
        return ranked
    pinned_rows = [facts.row_of[p] for p in pins if p in facts.row_of and p not in blocked and facts.row_of[p] != q
                   and (hidden is None or not hidden[facts.row_of[p]])]
    pinned_rows = list(dict.fromkeys(pinned_rows))
    head = [Link(r, found.get(r, float("nan")), pinned=True) for r in pinned_rows]
    taken = set(pinned_rows)
    if facts.name_codes is not None:  # nor a ranked link with the title of a pinned one
        names = {int(facts.name_codes[r]) for r in pinned_rows} - {-1}
        taken |= {link.row for link in ranked if int(facts.name_codes[link.row]) in names}
    return head + [link for link in ranked if link.row not in taken]


def reverse_z(rows: np.ndarray, cand: Candidates, standing) -> np.ndarray:
    """The reverse z-score of links to `rows` (candidates of `cand`): their embedding cosine to the query (the
    candidates' raw dense value) against the linked article's own average and spread (an article unlike the rest
    is below the average of the articles it would link to, though it is their best match)."""
    order = np.argsort(cand.rows, kind="stable")
    at = order[np.searchsorted(cand.rows[order], rows)]
    mean, std = standing.of(rows) if hasattr(standing, "of") else (standing[0][rows], standing[1][rows])
    return (cand.raw["dense"][at] - mean) / std


def first_of_each_title(codes: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each title code, in order (code -1, no words: each its own)."""
    codes = np.where(codes >= 0, codes, -2 - np.arange(len(codes)))
    _, first = np.unique(codes, return_index=True)
    return np.sort(first)


def title_codes(titles: Sequence[str], min_words: int = 3) -> np.ndarray:
    """Equal codes for equal titles (case, punctuation and spacing aside) of at least min_words words; -1 for
    shorter titles (by default "Introduction", "Syntax", which say nothing about being one story)."""
    codes: dict[str, int] = {}
    out = np.full(len(titles), -1, dtype=np.int64)
    for row, title in enumerate(titles):
        words = re.findall(r"\w+", (title or "").lower())
        if len(words) >= min_words:
            out[row] = codes.setdefault(" ".join(words), len(codes))
    return out


def api_name(url: str | None, article_id: str) -> str | None:
    """An API reference page's dotted name: the last segment of its URL's path (else of its id) without a page
    suffix, when it is two or more identifiers joined by dots, lower-cased (`.../generated/numpy.ma.arctan2.html`
    -> `numpy.ma.arctan2`). None for other pages (`printf.3`: a man page's section; `3.2`: a version; `post-1`)."""
    path = urlsplit(url).path if url and "://" in url else article_id
    parts = [p for p in (path or "").lower().split("/") if p]
    name = PAGE_SUFFIX.sub("", parts[-1]) if parts else ""
    dotted = name.split(".")
    return name if len(dotted) >= 2 and all(NAME_PART.fullmatch(n) for n in dotted) else None


def api_name_codes(infos: Sequence) -> np.ndarray:
    """Equal codes for equal API names (api_name; the folder aside: one page at two URLs keeps its name), -1 for
    pages without one."""
    codes: dict[str, int] = {}
    out = np.full(len(infos), -1, dtype=np.int64)
    for row, info in enumerate(infos):
        name = api_name(getattr(info, "url", None), info.id)
        if name is not None:
            out[row] = codes.setdefault(name, len(codes))
    return out


def other_names(names: np.ndarray | None, a, b) -> np.ndarray | bool:
    """Whether pages a and b (rows, broadcast) are API pages of two different names (api_names): aliases or
    namesakes in two namespaces (`numpy.amax` and `numpy.max`, `numpy.arctan2` and `numpy.ma.arctan2`) document
    two names with one text, and curated API lists link them, so they are never copies."""
    if names is None:
        return False
    a, b = names[a], names[b]
    return (a >= 0) & (b >= 0) & (a != b)


def choose_links(ordered: list[Link], policy: Policy, *, every: bool = False) -> list[Link]:
    """The links to show: pins always, then ranked links above the minimum score and the minimum reverse z-score
    (where it was computed), k in all (every=True: all of them, however many; the editors' check reads a curated
    link's rank beyond any k a policy may set)."""
    minimum, reverse = policy.links.min_score, policy.links.min_reverse
    chosen = [link for link in ordered if link.pinned or (
        (minimum is None or link.score >= minimum) and (reverse is None or not link.reverse < reverse))]
    return chosen if every else chosen[:policy.links.k]


def collapse_duplicates(rows: np.ndarray, score: np.ndarray, vectors: np.ndarray, facts: RuleColumns, threshold: float,
                        query_vector: np.ndarray | None, query_row: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Keep one copy of each group of copies, in the group's best position. Copies: near-duplicate vectors
    (cosine >= threshold), or one title of 3+ words with text about the same (cosine >= TITLE_COPY_COSINE):
    syndicated copies of one story often carry different excerpts, so their vectors alone differ.

    The copy kept is the earliest published (the original of a syndicated story), else the best ranked.
    Copies of the query article itself are dropped. Two API pages of different names are never copies
    (other_names)."""
    if threshold >= 1.0 or len(rows) == 0:
        return rows, score
    vecs = vectors[rows]
    sims = vecs @ vecs.T
    of_query = vecs @ query_vector if query_vector is not None else np.zeros(len(rows))
    codes = facts.title_codes[rows] if facts.title_codes is not None else np.full(len(rows), -1)
    same_title = (codes[:, None] == codes[None, :]) & (codes[:, None] >= 0)
    sims = np.where(same_title & (sims >= min(threshold, TITLE_COPY_COSINE)), np.maximum(sims, threshold), sims)
    query_code = facts.title_codes[query_row] if facts.title_codes is not None and query_row >= 0 else -1
    if query_code >= 0:
        of_query = np.where((codes == query_code) & (of_query >= min(threshold, TITLE_COPY_COSINE)),
                            np.maximum(of_query, threshold), of_query)
    names = getattr(facts, "api_names", None)
    if names is not None and (names[rows] >= 0).any():
        sims = np.where(other_names(names, rows[:, None], rows[None, :]), 0.0, sims)
        if query_row >= 0:
            of_query = np.where(other_names(names, rows, query_row), 0.0, of_query)
    if not (np.triu(sims, 1) >= threshold).any() and not (of_query >= threshold).any():
        return rows, score  # the common case: no copies at all
    copies = sims >= threshold
    kernel = ACTIVE["copy_slots"]
    if kernel is not None:  # the same walk, compiled (store.compiledscores._copy_slots)
        kept_at, first_at = np.empty(len(rows), np.int64), np.empty(len(rows), np.int64)
        count = kernel(np.ascontiguousarray(copies), np.asarray(of_query >= threshold),
                       np.asarray(facts.days[rows], dtype=np.float64), kept_at, first_at)
        return rows[kept_at[:count]], np.asarray(score[first_at[:count]], dtype=score.dtype)
    kept: list[int] = []  # positions into rows, one per slot
    slot_scores: list[float] = []
    slot_of = np.full(len(rows), len(rows), dtype=np.int64)  # each earlier position's slot (len: none, dropped)
    for i in range(len(rows)):
        if of_query[i] >= threshold:
            continue
        slots = slot_of[:i][copies[i, :i]]  # the first slot with a copy of this one takes it
        dup = int(slots.min()) if len(slots) else len(rows)
        if dup == len(rows):
            slot_of[i] = len(kept)
            kept.append(i)
            slot_scores.append(score[i])
        else:
            slot_of[i] = dup
            if facts.days[rows[i]] < facts.days[rows[kept[dup]]]:  # an earlier copy: the original takes the slot
                kept[dup] = i
    return rows[np.array(kept, dtype=np.int64)], np.array(slot_scores, dtype=score.dtype)


def mmr(rows: np.ndarray, score: np.ndarray, vectors: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Maximal marginal relevance: repeatedly take the candidate maximising
    lam * relevance - (1 - lam) * (its highest cosine to those already taken), relevance scaled to [0, 1]."""
    if len(rows) < 3:
        return rows, score
    low, high = score.min(), score.max()
    relevance = (score - low) / (high - low) if high > low else np.ones_like(score)
    vecs = vectors[rows]
    sims = vecs @ vecs.T
    taken = [0]
    closest = sims[0].copy()
    left = np.ones(len(rows), dtype=bool)
    left[0] = False
    while left.any():
        value = np.where(left, lam * relevance - (1 - lam) * closest, -np.inf)
        best = int(np.argmax(value))
        taken.append(best)
        left[best] = False
        closest = np.maximum(closest, sims[best])
    order = np.array(taken)
    return rows[order], score[order]
