"""Reading a corpus in shards, so that workers (the Ray engine's tasks) clean and prepare its articles while one
driver only reads bytes and merges: the same `Corpus` as `read_corpus` (the same articles in the same order, the
same deduplication, the same problems in the same order).

    shards = corpus_shards("content/", ignored)              # driver: lazily, the bytes of each shard
    parts = [read_shard(cache_path, shard) for shard in shards]   # workers (any order, any machine)
    corpus = assemble(parts, ignored)                          # driver

A shard is a group of whole files (up to SHARD_BYTES together) or a part of a large JSONL file: whole lines,
about SHARD_BYTES of them, cut at line ends. A corpus is often one big JSONL file (a site export; MDN's is 39 MB
of 14,592 articles), where splitting by file alone would leave every core but one idle; a Markdown folder is
many small files, which are grouped so that a task is worth its overhead. The driver reads the bytes and ships
them, so workers need no access to the corpus; files the driver cannot read, or too large to read, travel as
what the reader would have raised. A shard's articles are prepared with the prepared-article cache when the
worker can open the driver's cache file (recommender.ingest.prepared_cache.ShardCache).
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .article import Article, Corpus, Problem
from .filebytes import BOMS, MAX_FILE_BYTES, link_outside, regular_size
from .jsonl import NO_ARTICLES, read_jsonl_part
from .merge import merge_articles
from .prepared_cache import ShardCache
from .reader import format_of, iter_corpus_files, read_input, relative_path

SHARD_BYTES = 4 * 1024 * 1024  # bytes of input a shard holds (a part of a JSONL file, or a group of files)
SHARD_FILES = 256  # files a shard holds at most


@dataclass
class ShippedFile:
    """A corpus file as the reader sees it (`suffix`, `stat()`, `read_bytes()`), from what the driver read: its
    bytes, or its size alone (too large to read), or the error reading it raised."""

    suffix: str
    size: int = 0
    data: bytes | None = None
    error: tuple[int, str, str] | None = None  # (errno, strerror, filename) of an OSError

    def stat(self) -> os.stat_result:
        if self.error is not None:
            raise OSError(*self.error)
        return os.stat_result((stat.S_IFREG, 0, 0, 0, 0, 0, self.size, 0, 0, 0))

    def read_bytes(self) -> bytes:
        if self.error is not None or self.data is None:
            raise OSError(*(self.error or (errno.EIO, "not read", "")))
        return self.data


@dataclass
class Input:
    """One file of a shard, or a part of one (whole lines from `first_line` on; `at_start`: the file's start)."""

    rel: str
    file: ShippedFile
    part: tuple[int, bool] | None = None  # (first_line, at_start) for a part of a JSONL file
    parts: int = 1  # how many parts the file was cut into (on the file's first part)


@dataclass
class ShardResult:
    """What a worker made of one shard: for each input, its articles and problems (a part of a JSONL file: the
    problems of lines that are not text apart, since a file reports them first), and the cache's use."""

    articles: list[list[Article]] = field(default_factory=list)
    undecoded: list[list[Problem]] = field(default_factory=list)
    problems: list[list[Problem]] = field(default_factory=list)
    inputs: list[Input] = field(default_factory=list)  # without their bytes
    cache: ShardCache | None = None


def corpus_files(path: str | os.PathLike, ignored: list[str]) -> tuple[list[Path], Path]:
    """(the files read_corpus reads, in its order; the folder their names are relative to)."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or directory")
    if root.is_dir():
        return list(iter_corpus_files(root, ignored)), root
    return [root], root.parent


def ship(path: Path) -> ShippedFile:
    """A file's bytes as the driver reads them (its size alone above the reader's limit)."""
    suffix = path.suffix
    try:
        size = regular_size(path)
        if size > MAX_FILE_BYTES:
            return ShippedFile(suffix, size)
        return ShippedFile(suffix, size, path.read_bytes())
    except OSError as exc:
        return ShippedFile(suffix, error=(exc.errno or errno.EIO, exc.strerror or str(exc), exc.filename or ""))


def line_parts(data: bytes, size: int = SHARD_BYTES) -> list[tuple[int, int, int]]:
    """(start, stop, first line number) of parts of about `size` bytes cut after a line end."""
    parts, start, line = [], 0, 1
    while start < len(data):
        cut = data.find(b"\n", start + size - 1) if start + size < len(data) else -1
        stop = len(data) if cut < 0 else cut + 1
        parts.append((start, stop, line))
        line += data.count(b"\n", start, stop)
        start = stop
    return parts


def split_input(path: Path, rel: str, size: int = SHARD_BYTES) -> list[Input]:
    """A file as inputs: a large file of a format with one record a line (JSONL: readable, not blank, no
    UTF-16/32 byte-order mark) in parts of whole lines, any other file whole."""
    shipped = ship(path)
    data = shipped.data
    if (not format_of(path).by_lines or data is None or len(data) <= size or not data.strip()
            or any(data.startswith(bom) for bom, _ in BOMS)):
        return [Input(rel, shipped)]
    cuts = line_parts(data, size)
    return [Input(rel, ShippedFile(shipped.suffix, stop - start, data[start:stop]), (line, start == 0),
                  len(cuts) if start == 0 else 1)
            for start, stop, line in cuts]


def corpus_shards(path: str | os.PathLike, ignored: list[str], size: int = SHARD_BYTES,
                  files_per_shard: int = SHARD_FILES) -> Iterator[list[Input]]:
    """The corpus as shards (lists of inputs) in reading order, each read from disk only when it is asked for."""
    files, base = corpus_files(path, ignored)
    walked = Path(path).is_dir()
    shard: list[Input] = []
    held = 0
    for file in files:
        outside = link_outside(file, base) if walked else None
        inputs = [Input(relative_path(file, base), ShippedFile(file.suffix, error=(errno.EPERM, outside, "")))] \
            if outside else split_input(file, relative_path(file, base), size)
        for item in inputs:
            if shard and (item.part is not None or held + item.file.size > size or len(shard) >= files_per_shard):
                yield shard
                shard, held = [], 0
            shard.append(item)
            held += item.file.size
            if item.part is not None:
                yield shard
                shard, held = [], 0
    if shard:
        yield shard


def read_shard(cache_path: str | None, shard: list[Input]) -> ShardResult:
    """A worker's reading of one shard (with the prepared-article cache at cache_path when it can open it)."""
    cache = ShardCache(cache_path) if cache_path else None
    result = ShardResult(cache=cache)
    try:
        for item in shard:
            undecoded: list[Problem] = []
            if item.part is None:
                found, problems = read_input(item.file, item.rel, cache)
            else:
                found, undecoded, problems = read_jsonl_part(item.file.read_bytes(), item.rel, cache, *item.part)
            result.articles.append(found)
            result.undecoded.append(undecoded)
            result.problems.append(problems)
            result.inputs.append(Input(item.rel, ShippedFile(item.file.suffix, item.file.size), item.part,
                                       item.parts))
    finally:
        if cache is not None:
            cache.close()
    return result


def assemble(results: list[ShardResult], ignored: list[str], cache=None) -> Corpus:
    """The Corpus read_corpus makes, from the shards' results in order; their cache use goes to `cache` (a
    PreparedCache, then committed)."""
    articles: list[Article] = []
    problems: list[Problem] = []
    flat = [(item, found, undecoded, trouble) for result in results
            for item, found, undecoded, trouble in zip(result.inputs, result.articles, result.undecoded,
                                                       result.problems)]
    at = 0
    while at < len(flat):
        count = flat[at][0].parts if flat[at][0].part is not None else 1
        pieces = flat[at:at + count]
        at += count
        for _, found, _, _ in pieces:
            articles.extend(found)
        if pieces[0][0].part is None:
            problems.extend(pieces[0][3])
            continue
        own = [p for piece in pieces for p in piece[2]] + [p for piece in pieces for p in piece[3]]
        if not any(piece[1] for piece in pieces) and not own:
            own.append(Problem(pieces[0][0].rel, NO_ARTICLES))
        problems.extend(own)
    if cache is not None:
        for result in results:
            if result.cache is not None:
                cache.absorb(result.cache)
        cache.commit()
    merged, merge_problems = merge_articles(articles)
    return Corpus(merged, problems + merge_problems, ignored)
