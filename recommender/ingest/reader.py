"""Read articles from a directory, a file or a JSONL feed. The only module that reads corpus files.

Formats (see ``../shared/seeds`` and ``demo/``):

* Markdown (or .txt) with YAML front matter, news-item shape: title, excerpt, publishedDateTime, webUrl/originalUrl,
  provider, topics, ``related:`` (hand-curated links, each becoming an article of its own) and an encrypted
  ``secured:`` body that is ignored.
* Blog posts: front matter (slug, title, description, tags) and a Markdown body; markup, HTML comments and
  ``<head>`` blocks are stripped, a ``<link rel="canonical">`` in the body gives the URL.
* Plain text: the first line is the title when it looks like one, else a title is taken from the first sentence.
* JSONL: one ``{"id", "title", "text", "excerpt"?, "url"?, "published"?, "source"?}`` object a line.
* XML: WordPress exports (WXR), RSS 2.0 and Atom feeds, one article an item (``xmlinput``, ``wxr``, ``feeds``).

An article's ``url`` is the URL it gave, byte for byte (outputs carry it); its id and deduplication use the
canonical form. Items marked ``published: false`` or ``draft: true`` are kept with ``draft=True``: they get
links of their own but are never linked to unless the policy says so.

Bad input never aborts a read: each file (or JSONL line) that cannot be used becomes a `Problem` and is skipped
(recommender.ingest.guard: `per_input`); a date that is not one is left out with a warning and the article kept.
Front matter is read with bounded work (recommender.ingest.safeyaml); front matter that is never closed (a
truncated file) is refused rather than read as text, since its `published: false` would be lost with it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from dataclasses import dataclass
from typing import Callable, Iterator

import yaml

from .article import Article, Corpus, Problem
from .guard import IngestError, per_input
from .safeyaml import load_front_matter
from .fields import author_list, id_url, is_draft, own_url, page_type, provider, published_date, tag_list
from .filebytes import MAX_FILE_BYTES, decode_text, link_outside, read_bytes, read_text  # noqa: F401
from .jsonl import parse_jsonl_record, read_jsonl  # noqa: F401 - importable from here
from .merge import merge_articles
from .text import canonical_url, clean_body, clean_field, first_sentence, fix_text, lead_paragraph, url_to_id
from .xmlinput import XML_SUFFIXES, is_feed_file, read_xml_file

MAX_FRONT_MATTER_CHARS = 1024 * 1024

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*\r?$\n?", re.S | re.M)
_CANONICAL_LINK = re.compile(r"<link\b[^<>]*\brel=[\"']canonical[\"'][^<>]*>", re.I)
_HREF = re.compile(r"\bhref=[\"']([^\"']+)[\"']", re.I)
_FIRST_HEADING = re.compile(r"^[ \t]{0,3}#[ \t]+(\S.*)$", re.M)
_YAML_KEY_LINE = re.compile(r"[A-Za-z_][\w.-]*[ \t]*:(?:[ \t]|$)")


# --- the input formats -----------------------------------------------------------------------------


@dataclass(frozen=True)
class InputFormat:
    """One input format: the file suffixes it reads, how one file is read into articles and problems, and how it
    is handed out (a format whose files hold one record a line may be cut at line ends: ingest.shards)."""

    name: str
    suffixes: frozenset[str]
    read: Callable  # (path, relative path, prepared cache or None) -> (articles, problems)
    accepts: Callable[[Path], bool] | None = None  # a file with one of the suffixes is this format's (None: all)
    whole_file_budget: bool = True  # one time budget for the file (False: each record has its own)
    by_lines: bool = False  # one record a line: a large file may be read in parts of whole lines


def _read_jsonl_file(path: Path, rel: str, cache=None):
    return read_jsonl(path, rel, cache)


def _read_xml_file(path: Path, rel: str, cache=None):
    return read_xml_file(path, rel, MAX_FILE_BYTES)


def _read_text_file(path: Path, rel: str, cache=None):
    text = read_text(path)
    if cache is None:
        return parse_document(text, rel)
    from .prepared_cache import raw_key

    key = raw_key(rel, text)
    hit = cache.get_many([key])
    if key in hit:
        return hit[key], []
    found, problems = parse_document(text, rel)
    if not problems:  # input with problems is parsed again each time, so its messages stay exact
        cache.put(key, found)
    return found, problems


# The registry: reading a new format is one entry here, and its reader (docs/design.md, "Adding an input format").
# A file given by name whose suffix no format claims is read as text (the last entry).
FORMATS = (
    InputFormat("jsonl", frozenset({".jsonl", ".ndjson"}), _read_jsonl_file, whole_file_budget=False, by_lines=True),
    InputFormat("xml", frozenset(XML_SUFFIXES), _read_xml_file, accepts=is_feed_file),  # feeds, WordPress exports
    InputFormat("text", frozenset({".md", ".markdown", ".mdx", ".txt", ".text"}), _read_text_file),
)


def read_suffixes() -> frozenset[str]:
    """Every suffix a format reads (what a corpus folder's files are read by)."""
    return frozenset().union(*(f.suffixes for f in FORMATS))


def format_of(path: Path) -> InputFormat:
    """The format that reads a file, by its suffix (text for any other)."""
    suffix = path.suffix.lower()
    return next((f for f in FORMATS if suffix in f.suffixes), FORMATS[-1])


# --- public API -------------------------------------------------------------------------------------


def read_corpus(path: str | os.PathLike, cache=None) -> Corpus:
    """Read a directory (recursively), one article file, or a JSONL file into a deduplicated `Corpus`.

    cache: an optional `recommender.ingest.prepared_cache.PreparedCache`; input whose raw bytes were prepared at the
    last read is taken from it instead of being cleaned again (the result is the same)."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or directory")
    articles: list[Article] = []
    problems: list[Problem] = []
    ignored: list[str] = []
    walked = root.is_dir()  # a folder's files (a file named on its own is read wherever it links to)
    if walked:
        files = list(iter_corpus_files(root, ignored))
        base = root
    else:
        files = [root]
        base = root.parent
    for file in files:
        outside = link_outside(file, base) if walked else None
        if outside:
            problems.append(Problem(relative_path(file, base), f"cannot read: {outside}"))
            continue
        found, file_problems = read_file(file, base, cache)
        articles.extend(found)
        problems.extend(file_problems)
    if cache is not None:
        cache.commit()
    merged, merge_problems = merge_articles(articles)
    return Corpus(merged, problems + merge_problems, ignored)


def iter_corpus_files(root: Path, ignored: list[str] | None = None) -> Iterator[Path]:
    """Article files under root in a stable order; hidden entries and README files are not articles.
    ignored: a list that receives the relative paths of the other (not hidden) files, which are not read."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            fmt = format_of(path)
            if (path.suffix.lower() in fmt.suffixes and not name.lower().startswith("readme")
                    and (fmt.accepts is None or fmt.accepts(path))):
                yield path
            elif ignored is not None:
                ignored.append(relative_path(path, root))


def read_file(path: Path, base: Path, cache=None) -> tuple[list[Article], list[Problem]]:
    """Articles of one file (several for JSONL or for news items with related lists), and its problems."""
    return read_input(path, relative_path(path, base), cache)


def read_input(path: Path, rel: str, cache=None) -> tuple[list[Article], list[Problem]]:
    """read_file for a file known by its path relative to the corpus. `path` needs only `suffix`, `stat()` and
    `read_bytes()` (recommender.ingest.shards hands a worker the bytes a driver read)."""
    problems: list[Problem] = []
    fmt = format_of(path)
    with per_input(rel, problems, **({} if fmt.whole_file_budget else {"seconds": None})):
        return fmt.read(path, rel, cache)
    return [], problems


def parse_document(text: str, rel: str) -> tuple[list[Article], list[Problem]]:
    """One Markdown/text document: front matter article (plus its related items) or plain text."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # CR-only line ends (classic Mac) read as LF
    warnings: list[str] = []
    meta, body = split_front_matter(text, rel, warnings)
    if meta is None:
        return [parse_plain_text(body, rel)], []
    articles, problems = parse_front_matter_article(meta, body, rel)
    return articles, [Problem(rel, w, kept=True) for w in warnings] + problems


# --- front matter ---------------------------------------------------------------------------------


def split_front_matter(text: str, rel: str = "", warnings: list[str] | None = None) -> tuple[dict | None, str]:
    """(metadata, body). No front matter gives (None, text); broken, unclosed or oversized front matter raises
    IngestError. warnings: receives the values kept as text (see safeyaml)."""
    match = _FRONT_MATTER.match(text)
    if not match:
        if _unclosed_front_matter(text):
            raise IngestError("front matter is never closed (no `---` line after it: a truncated file?); not read")
        return None, text
    if len(match.group(1)) > MAX_FRONT_MATTER_CHARS:
        raise IngestError(f"front matter larger than {MAX_FRONT_MATTER_CHARS:,} characters; not read")
    try:
        meta, found = load_front_matter(match.group(1))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise IngestError(f"front matter is not valid YAML{where}: {problem}") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise IngestError("front matter is not a mapping of keys to values")
    if warnings is not None:
        warnings.extend(found)
    return meta, text[match.end():]


def _unclosed_front_matter(text: str) -> bool:
    """A `---` first line followed by YAML keys, and no closing line: front matter cut off (a truncated file).
    A document that only starts with a `---` rule followed by prose is plain text."""
    lines = text.split("\n", 12)
    if lines[0].rstrip() != "---":
        return False
    following = [line for line in lines[1:12] if line.strip()]
    return bool(following) and _YAML_KEY_LINE.match(following[0]) is not None


def parse_front_matter_article(meta: dict, raw_body: str, rel: str) -> tuple[list[Article], list[Problem]]:
    """A news item or blog post; the curated ``related:`` items become articles of their own."""
    problems: list[Problem] = []
    dates: list[str] = []
    body = clean_body(raw_body)
    title = clean_field(meta.get("title")) or _heading_title(raw_body) or first_sentence(body)
    excerpt = clean_field(meta.get("excerpt") or meta.get("description") or meta.get("summary"))
    if not excerpt and body:
        excerpt = lead_paragraph(body)
    if not title and not body and not excerpt:
        raise IngestError("no title, excerpt or body text")
    # The id: the article's own URL where it gives one, else its slug, else its path. A <link rel="canonical">
    # in a post's body may point to a general page (seed 002 points to microsoft.com/.../our-approach): it is
    # only the URL to show when the article gives no other, never the id.
    slug = str(meta.get("slug") or "").strip().strip("/")
    given = id_url(meta)
    article_id = url_to_id(given) if given else (slug or _path_id(rel))
    is_news = str(meta.get("category", "")).lower() == "news" or "related" in meta or "secured" in meta
    source = provider(meta)
    article = Article(
        id=article_id,
        title=title,
        excerpt=excerpt,
        body=body,
        url=own_url(meta) or _canonical_link(raw_body, meta, rel),
        published=published_date(meta, dates),
        source=source,
        topics=tag_list(meta),
        authors=author_list(meta) or ([source] if is_news and source else []),
        page_type=page_type(meta),
        draft=is_draft(meta),
        kind="news" if is_news else "blog",
        path=rel,
        slug=slug or None,
    )
    problems.extend(Problem(rel, w, kept=True) for w in dates)
    related = meta.get("related") or []
    if not isinstance(related, list):
        problems.append(Problem(rel, "`related:` is not a list; curated links ignored"))
        related = []
    stubs: list[Article] = []
    for position, item in enumerate(related, start=1):
        dates = []
        try:
            stub = _related_item(item, rel, dates)
        except IngestError as exc:
            problems.append(Problem(rel, f"related item {position}: {exc}; item skipped"))
            continue
        problems.extend(Problem(rel, f"related item {position}: {w}", kept=True) for w in dates)
        if stub.id == article.id:
            continue
        stubs.append(stub)
        if stub.id not in article.curated:
            article.curated.append(stub.id)
    return [article, *stubs], problems


def _related_item(item: object, rel: str, dates: list[str] | None = None) -> Article:
    if not isinstance(item, dict):
        raise IngestError("not a mapping")
    url = id_url(item)
    if not url:
        raise IngestError("no usable webUrl")
    title = clean_field(item.get("title"))
    excerpt = clean_field(item.get("excerpt") or item.get("description"))
    if not title and not excerpt:
        raise IngestError("no title or excerpt")
    return Article(
        id=url_to_id(url),
        title=title or first_sentence(excerpt),
        excerpt=excerpt,
        url=own_url(item),
        published=published_date(item, dates),
        source=provider(item),
        authors=author_list(item) or [p for p in [provider(item)] if p],
        draft=is_draft(item),
        kind="related",
        path=rel,
    )


# --- plain text -----------------------------------------------------------------------------------


def parse_plain_text(text: str, rel: str) -> Article:
    """Plain text: a short first line without final punctuation is the title; else the first sentence is."""
    text = fix_text(text)
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    if not lines:
        raise IngestError("empty file")
    first, rest = lines[0], "\n".join(lines[1:]).strip()
    if rest and looks_like_title(first):
        title, body = clean_field(first.lstrip("#").strip()), clean_body(rest)
    else:
        body = clean_body("\n".join(lines))
        title = first_sentence(body, max_chars=90)
    if not body and not title:
        raise IngestError("no text")
    excerpt = lead_paragraph(body)
    return Article(id=_path_id(rel), title=title, excerpt=excerpt, body=body, kind="text", path=rel)


def looks_like_title(line: str) -> bool:
    """A title line: short, few words, and not a sentence that ends in a full stop or colon."""
    words = line.split()
    return 0 < len(words) <= 16 and len(line) <= 120 and not line.rstrip().endswith((".", ",", ";", ":"))


# --- small helpers --------------------------------------------------------------------------------


def relative_path(path: Path, base: Path) -> str:
    """`path` as a POSIX path relative to `base` (the name problems and ids use), else the whole path. Bytes of
    the name that are not UTF-8 (a Latin-1 ``caf\\xe9.md``) are written as ``\\xe9``, control characters as
    ``\\n`` or ``\\x1b``: the name is text every output (JSON, SQLite) can hold, and a problem naming it one line."""
    try:
        rel = path.relative_to(base).as_posix()
    except ValueError:
        rel = path.as_posix()
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").translate(_ESCAPED)


_ESCAPED = {c: repr(chr(c))[1:-1] for c in [*range(32), 127]}  # "\n", "\x1b"


def _path_id(rel: str) -> str:
    stem = rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel
    return stem


def _canonical_link(raw_body: str, meta: dict, rel: str) -> str | None:
    """The href of a ``<link rel="canonical">`` in the body, when it points to the article's own page: on the host
    of another URL its front matter gives (its `image`, say), or with the article's slug (else its file name) as
    its last path segment. A canonical link pasted into a post often names a general page of another site (seed
    002: microsoft.com/.../our-approach on an azureaidevs.github.io post with the slug 2023-day6): that is not the
    article's address, so the article then has no URL."""
    hosts = {_host(v) for v in meta.values() if isinstance(v, str) and canonical_url(v)}
    names = {str(meta.get("slug") or "").strip("/").rsplit("/", 1)[-1].lower(), _path_id(rel).rsplit("/", 1)[-1].lower()}
    for tag in _CANONICAL_LINK.findall(raw_body[:20000]):
        href = _HREF.search(tag)
        url = canonical_url(href.group(1)) if href else None
        if url and (_host(url) in hosts or url.rstrip("/").rsplit("/", 1)[-1].lower() in names - {""}):
            return href.group(1).strip()
    return None


def _host(url: str) -> str:
    """A URL's host as ids compare it (lower case, without www.)."""
    return canonical_url(url).split("://", 1)[1].split("/", 1)[0]


def _heading_title(raw_body: str) -> str:
    match = _FIRST_HEADING.search(raw_body)
    if not match:
        return ""
    text = match.group(1).rstrip()
    closed = text.rstrip("#")  # a closing "## " sequence, after a space, is not part of the heading
    if closed != text and (not closed or closed[-1] in " \t"):
        text = closed
    return clean_field(text)
