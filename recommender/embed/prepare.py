"""Turn an article into the texts the model reads, and combine their vectors into one article vector.

A model reads at most its max sequence length in word pieces (all-MiniLM-L6-v2: 256); most article bodies are
longer. Rather than cut them silently, the body is split into overlapping windows of `window_words` words, at most
`max_chunks` of them spread evenly over the whole body, so the end of a long article counts as much as its start.
The window length follows the model (`Preparation.for_model`): 150 words per 256 word pieces it reads (about 200
word pieces with the title in front), overlapping by a fifth; a model that declares no length gets MiniLM's.
The article vector is the normalised mix of the head vector (title + excerpt) and the mean of the body-chunk
vectors, weighted by `head_weight`. Articles without a body (news items, curated related items)
are their head alone.

Every window is also kept on its own (`PreparedText.windows`: the head and *every* body window, not only the
spread ones): the index stores their vectors for the window-level score (recommender.rank.windows), which finds
the related page that matches one section of a long one. The article vector reads the spread windows among them,
so it is the same as when only those were embedded.

A body longer than `max_windows` windows (256: about 30,800 words, 200 KB of prose) keeps that many, spread
evenly over it (the first and the last always among them); the text between them is not embedded (it is still
in the lexical index). Without the cap a 5 MB body was 6,300 windows to embed and store.

Changing any of these settings changes `Preparation.key`, which the index records: an index built with other
settings is refused, and the incremental batch re-embeds. The cap is the exception: it is recorded but not part
of the key, since it changes nothing below it (no article of the shared corpora has more than 185 windows) and
each article's content hash covers its exact window texts, so an index built before the cap stays valid and
only an article above it is embedded again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from ..ingest.article import Article

PREPARATION_VERSION = 2  # 2: every body window is embedded and stored
DEFAULT_MAX_TOKENS = 256  # all-MiniLM-L6-v2's max sequence length: what a model that declares none is read with
WINDOW_WORDS, STRIDE_WORDS = 150, 120  # at DEFAULT_MAX_TOKENS; scaled with a model's max sequence length


@dataclass(frozen=True)
class Preparation:
    """Settings of the text preparation; recorded in the index manifest."""

    window_words: int = WINDOW_WORDS  # for a model's max sequence length: for_model
    stride_words: int = STRIDE_WORDS
    max_chunks: int = 8
    head_weight: float = 0.3  # chosen by measurement on the shared corpora (README, "Ranking")
    title_in_chunks: bool = True
    version: int = PREPARATION_VERSION
    max_windows: int = 256  # body windows kept (spread evenly); not part of the key (see the module docstring)

    @classmethod
    def for_model(cls, max_tokens: int | None = None, **settings) -> "Preparation":
        """This version's preparation for a model that reads at most `max_tokens` word pieces (its max sequence
        length; None: DEFAULT_MAX_TOKENS): windows of WINDOW_WORDS words per DEFAULT_MAX_TOKENS word pieces, the
        stride in the same proportion. For all-MiniLM-L6-v2 (256) that is Preparation() itself."""
        tokens = int(max_tokens or DEFAULT_MAX_TOKENS)
        words = max(1, tokens * WINDOW_WORDS // DEFAULT_MAX_TOKENS)
        return cls(window_words=words, stride_words=max(1, words * STRIDE_WORDS // WINDOW_WORDS), **settings)

    @property
    def key(self) -> str:
        """A short stable identifier of these settings."""
        settings = {k: v for k, v in asdict(self).items() if k != "max_windows"}
        blob = json.dumps(settings, sort_keys=True).encode()
        return f"v{self.version}-{hashlib.sha256(blob).hexdigest()[:10]}"

    def to_dict(self) -> dict:
        return {**asdict(self), "key": self.key}

    @classmethod
    def from_dict(cls, data: dict) -> "Preparation":
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**fields)


@dataclass(frozen=True)
class PreparedText:
    """What the model reads for one article: the head and every body window; `picked` are the windows (spread
    over the body, at most `max_chunks`) whose mean makes the article vector with the head."""

    head: str
    windows: tuple[str, ...]
    picked: tuple[int, ...] = ()

    @property
    def chunks(self) -> tuple[str, ...]:
        """The body chunks of the article vector."""
        return tuple(self.windows[i] for i in self.picked)

    @property
    def texts(self) -> list[str]:
        """The head and the article vector's chunks (what a one-off text query embeds)."""
        return [self.head, *self.chunks]

    @property
    def all_texts(self) -> list[str]:
        """The head and every window: what the index embeds (row 0 the head)."""
        return [self.head, *self.windows]

    def content_hash(self, preparation: Preparation) -> str:
        """Hash of the exact texts and settings; equal hashes mean equal vectors for one model."""
        digest = hashlib.sha256(preparation.key.encode())
        for text in self.all_texts:
            digest.update(b"\x1f")
            digest.update(text.encode("utf-8"))
        return digest.hexdigest()


def head_text(article: Article) -> str:
    """Title and excerpt, the part of an article a reader sees in a list of links."""
    title = article.title.strip()
    excerpt = article.excerpt.strip()
    if not excerpt or excerpt == title:
        return title
    if not title:
        return excerpt
    sep = " " if title.endswith((".", "!", "?", ":")) else ". "
    return f"{title}{sep}{excerpt}"


def split_windows(words: list[str], window: int, stride: int) -> list[tuple[int, int]]:
    """(start, end) word offsets of overlapping windows that cover all words."""
    if not words:
        return []
    if len(words) <= window:
        return [(0, len(words))]
    spans = []
    start = 0
    while True:
        end = min(start + window, len(words))
        spans.append((start, end))
        if end >= len(words):
            return spans
        start += stride


def spread(items: list, limit: int) -> list:
    """At most `limit` items spread evenly over the list, always keeping the first and the last."""
    if len(items) <= limit:
        return items
    if limit == 1:
        return items[:1]
    picks = np.linspace(0, len(items) - 1, limit).round().astype(int)
    return [items[i] for i in sorted(set(picks.tolist()))]


def prepare(article: Article, preparation: Preparation = Preparation()) -> PreparedText:
    """The head and body chunks of an article under the given settings."""
    head = head_text(article)
    words = article.body.split()
    spans = spread(split_windows(words, preparation.window_words, preparation.stride_words),
                   preparation.max_windows)
    picked = tuple(spread(list(range(len(spans))), preparation.max_chunks))
    prefix = f"{article.title.strip()}: " if preparation.title_in_chunks and article.title.strip() else ""
    windows = tuple(prefix + " ".join(words[a:b]) for a, b in spans)
    return PreparedText(head=head or (windows[0] if windows else article.id), windows=windows, picked=picked)


def combine(head: np.ndarray, chunks: np.ndarray, preparation: Preparation = Preparation()) -> np.ndarray:
    """One unit-length article vector from the head vector and the (possibly empty) chunk vectors."""
    vector = head.astype(np.float32)
    if len(chunks):
        body = chunks.mean(axis=0)
        norm = np.linalg.norm(body)
        if norm > 0:
            body = body / norm
        vector = preparation.head_weight * vector + (1.0 - preparation.head_weight) * body
    norm = np.linalg.norm(vector)
    return (vector / norm if norm > 0 else vector).astype(np.float32)
