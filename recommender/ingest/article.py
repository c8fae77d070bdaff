"""The Article record every other part of the package works on, and the report of skipped input."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .text import canonical_url, shorten

# A title or source longer than this is cut (at a word, with an ellipsis): a body exported as the title would
# otherwise be copied into every list that links to the article (a 5 MB title, 20 lists: 100 MB of site data).
MAX_TITLE_CHARS = 1000


@dataclass
class Article:
    """One article after ingest: clean plain text, a stable id, and where it came from.

    kind is one of ``news`` (front matter news item), ``blog`` (Markdown post), ``text`` (plain text),
    ``jsonl`` (a line of a JSONL feed), ``wxr`` (a WordPress export's post or page), ``feed`` (an RSS or Atom
    item) or ``related`` (an item known only from a curated ``related:`` list).
    ``curated`` holds the ids of the hand-curated related links, in their order.
    """

    id: str
    title: str
    excerpt: str = ""
    body: str = ""
    url: str | None = None  # the URL the article gave, byte for byte (what outputs carry); ids use its canonical form
    published: str | None = None
    source: str | None = None
    topics: list[str] = field(default_factory=list)  # tags, topics, categories and keywords, as the site gave them
    authors: list[str] = field(default_factory=list)
    page_type: str | None = None  # a site's own page kind (MDN's page-type), where it has one
    draft: bool = False  # unpublished (`published: false`, `draft: true`, a WordPress draft): never linked to
    kind: str = "text"
    path: str = ""  # the file it was read from, relative to the corpus folder (a stub: the file that lists it)
    slug: str | None = None  # the `slug` the article gave (front matter, JSONL), what a site's permalink may use
    curated: list[str] = field(default_factory=list)

    def __post_init__(self):
        if len(self.title) > MAX_TITLE_CHARS:
            self.title = shorten(self.title, MAX_TITLE_CHARS)
        if self.source and len(self.source) > MAX_TITLE_CHARS:
            self.source = shorten(self.source, MAX_TITLE_CHARS)

    @property
    def canonical(self) -> str | None:
        """The canonical form of url (ids and deduplication compare these), or None."""
        return canonical_url(self.url)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Article":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Problem:
    """An input that was skipped (or partly used), with the file (and line) and the reason. kept: the article
    was read all the same, with one value left out (a date that is not one): a warning, not a skipped input."""

    path: str
    reason: str
    line: int | None = None
    kept: bool = False

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"


@dataclass
class Corpus:
    """The result of reading a corpus: articles in a deterministic order, curated links, skipped input."""

    articles: list[Article]
    problems: list[Problem] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # files not read: README files and other extensions

    def by_id(self) -> dict[str, Article]:
        return {a.id: a for a in self.articles}

    def curated_pairs(self) -> list[tuple[str, str]]:
        """(article id, related id) for every hand-curated link, in list order."""
        return [(a.id, rid) for a in self.articles for rid in a.curated]
