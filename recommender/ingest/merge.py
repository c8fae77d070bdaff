"""Deduplication of ingested articles by id and canonical URL, and resolution of curated links to the ids
that survive it. Pure logic on Article records: nothing here reads files."""

from __future__ import annotations

from typing import Iterable

from .article import Article, Problem
from .text import canonical_url


def merge_articles(articles: Iterable[Article]) -> tuple[list[Article], list[Problem]]:
    """Deduplicate by id and by canonical URL.

    A full article beats a stub known only from a ``related:`` list; two stubs of one URL merge (the longer
    excerpt wins); two full articles with one id or one canonical URL keep the first and report the second.
    Curated links are re-pointed to the surviving id.
    """
    kept: dict[str, Article] = {}
    by_url: dict[str, str] = {}
    problems: list[Problem] = []
    stubs: list[Article] = []
    for art in articles:
        if art.kind == "related":
            stubs.append(art)
            continue
        canon = art.canonical
        other = kept.get(art.id) or (kept.get(by_url[canon]) if canon in by_url else None)
        if other is not None:
            what = "id" if other.id == art.id else "canonical URL"
            problems.append(Problem(art.path, f"duplicate {what} {art.id!r} (first seen in {other.path}); skipped"))
            continue
        kept[art.id] = art
        if canon:
            by_url[canon] = art.id
    alias: dict[str, str] = {}
    for stub in stubs:
        canon = stub.canonical
        target = kept.get(stub.id) or (kept.get(by_url[canon]) if canon in by_url else None)
        if target is not None:
            alias[stub.id] = target.id
            continue
        kept[stub.id] = stub
        if canon:
            by_url[canon] = stub.id
    # Curated links may also name a JSONL id directly, or a URL of an article whose id is not URL-based.
    for art in kept.values():
        if art.curated:
            resolved: list[str] = []
            for rid in art.curated:
                rid = alias.get(rid, rid)
                canon = canonical_url(rid) if "://" in rid else None
                if canon and canon in by_url:
                    rid = by_url[canon]
                if rid != art.id and rid not in resolved:
                    resolved.append(rid)
            art.curated = resolved
    # Stubs are kept for their first-seen position; a stub with a longer excerpt from another list wins.
    for stub in stubs:
        current = kept.get(stub.id)
        if current is not None and current.kind == "related" and len(stub.excerpt) > len(current.excerpt):
            current.excerpt = stub.excerpt
    return list(kept.values()), problems
