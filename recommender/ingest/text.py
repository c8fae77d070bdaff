"""Text clean-up shared by every input format: mojibake repair, markup stripping, whitespace, URLs.

Nothing here reads files; `recommender.ingest.reader` does that and calls these functions on the strings it finds.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .budget import check_time


# Query parameters that only track a visit and never change which page is served.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "ref", "ref_src",
        "cmpid", "ocid", "wt.mc_id", "_ga", "yclid", "spm", "share", "smid", "sr_share",
    }
)
TRACKING_PREFIXES = ("utm_", "wt.", "pk_", "mtm_", "hsa_")

MAX_URL_CHARS = 8192  # a longer "URL" is not one a page has (browsers and servers stop well before)
EXCERPT_CHARS = 300  # an excerpt taken from a body: its lead paragraph, cut to this length

_WS_CHARS = r"[ \t\f\v\u00a0\u2000-\u200b\u3000]"
# a run of those characters that is not one plain space (which would become itself): two or more, or one other;
# a run is matched from its start, so this replaces what f"{_WS_CHARS}+" did, without a match at every word
_WS = re.compile(rf" {_WS_CHARS}+|[\t\f\v\u00a0\u2000-\u200b\u3000]{_WS_CHARS}*")
_BLANK_LINES = re.compile(r"\n\s*\n+")


# UTF-8 four-byte sequences (emoji) read as Mac Roman start with U+F8FF, the Apple logo, which ftfy does not
# always dare to undo on its own. Real text almost never holds that private-use character.
_MAC_ROMAN_EMOJI = re.compile("\uf8ff[^\x00-\x7f]{3}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")  # tab and line end too


def _undo_mac_roman(match: re.Match) -> str:
    try:
        return match.group(0).encode("mac_roman").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return match.group(0)


def fix_text(text: str) -> str:
    """Repair mojibake (UTF-8 read as cp1252 or Mac Roman), normalise to NFC, keep curly quotes."""
    if not text:
        return ""
    fixed = _MAC_ROMAN_EMOJI.sub(_undo_mac_roman, _ftfy(text))
    return unicodedata.normalize("NFC", fixed)


# A line of printable ASCII without "&" is one ftfy leaves as it is (no mojibake, entity, control character or
# line break to fix), and ftfy spends ~80 us on each line it is given: lines like it skip ftfy, so 5 MB of short
# or blank lines take no minutes. The result is the same as ftfy's on the whole text.
_PLAIN_LINE = re.compile(r"[\t\x20-\x25\x27-\x7e]*\n?")
_LINE = re.compile(r"[^\n]*\n|[^\n]+")


def _ftfy(text: str) -> str:
    import ftfy  # imported on first use: URL lookups at query time do not need it

    options = {"uncurl_quotes": False, "fix_line_breaks": True}
    if text.isascii() and "&" not in text and not _CONTROL.search(text):
        return text
    out: list[str] = []
    pending: list[str] = []  # lines ftfy must see, in one call
    html = "auto"  # as in ftfy.fix_text: entities are unescaped until a segment holding "<" is seen

    def flush() -> None:
        nonlocal html
        if pending:
            chunk = "".join(pending)
            out.append(ftfy.fix_text(chunk, unescape_html=html, **options))
            html = False if "<" in chunk else html
            pending.clear()

    for line in _LINE.findall(text):  # ftfy's segments: lines ending in "\n" (str.splitlines splits on more)
        check_time()
        if _PLAIN_LINE.fullmatch(line):
            flush()
            out.append(line)
            html = False if "<" in line else html
        else:
            pending.append(line)
    flush()
    return "".join(out)


def collapse_whitespace(text: str, keep_paragraphs: bool = True) -> str:
    """Collapse runs of spaces; keep single blank lines between paragraphs when asked."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.strip() for line in _WS.sub(" ", text).split("\n")]  # _WS never spans a "\n": as line by line
    text = "\n".join(lines)
    if keep_paragraphs:
        return _BLANK_LINES.sub("\n\n", text).strip()
    return " ".join(text.split())


_SURROGATE = re.compile("[\ud800-\udfff]")


def no_lone_surrogates(value):
    """What JSON or YAML loaded (mappings, lists, strings), each lone surrogate in its strings (a ``\\ud800``
    escape that pairs with nothing: no character, and no UTF-8 output can hold it) made U+FFFD, as a decoder
    makes a byte that is not UTF-8."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [no_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {no_lone_surrogates(k): no_lone_surrogates(v) for k, v in value.items()}
    return value


def clean_field(value: object) -> str:
    """A short metadata field (title, excerpt): repaired, markup removed, one line."""
    if value is None:
        return ""
    text = fix_text(str(value))
    text = strip_inline_markup(text)
    return collapse_whitespace(text, keep_paragraphs=False)


# --- Markdown / HTML -------------------------------------------------------------------------------

# Every pattern here runs in time linear in its input: a character class never spans what the pattern looks for
# next ("[^\[\]]" inside brackets, "[ \t]" rather than "\s" where a line is meant), so a failed match from one
# start cannot rescan the text after it. (`*a ` x 17,000, `[` x 50,000 or 100,000 blank lines once took
# quadratic time; see tests/ingest/test_text.py and scripts/campaign_input.py.)
_HTML_COMMENT = re.compile(r"<!--.*?(-->|\Z)", re.S)
_BLOCK_OPEN = re.compile(r"<(head|script|style|svg|noscript|iframe)\b[^<>]*>", re.I)
_FENCED_CODE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
_URL_PART = r"\((?:[^()]|\([^()]*\))*\)"  # (url), one level of parentheses inside
_IMAGE = re.compile(r"!\[([^\[\]]*)\]" + _URL_PART)
_IMAGE_REF = re.compile(r"!\[([^\[\]]*)\]\[[^\[\]]*\]")
_LINK = re.compile(r"\[([^\[\]]+)\]" + _URL_PART)
_LINK_REF = re.compile(r"\[([^\[\]]+)\]\[[^\[\]]*\]")
_LINK_DEF = re.compile(r"^[ \t]*\[[^\]\n]+\]:[ \t]*\S+.*$", re.M)
_AUTOLINK = re.compile(r"<(https?://[^<>\s]+)>")
_BARE_URL = re.compile(r"https?://\S+")
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}(.*)$", re.M)
_SETEXT = re.compile(r"^[ \t]{0,3}(=+|-+)[ \t]*$", re.M)
_BLOCKQUOTE = re.compile(r"^[ \t]{0,3}>[ \t]?", re.M)
_LIST_MARK = re.compile(r"^[ \t]*(?:[-*+]|\d+[.)])[ \t]+", re.M)
_HRULE = re.compile(r"^[ \t]*(?:[-*_][ \t]*){3,}$", re.M)
# emphasis: the text inside never holds its own delimiter, so a start without an end fails at the next one
_EMPHASIS = re.compile(r"(\*\*|__|\*|(?<!\w)_)(?=\S)((?:(?!\1)[^\n])+?)(?<=\S)\1(?!\w)")
_STRIKE = re.compile(r"~~(.+?)~~")
_INLINE_CODE = re.compile(r"`{1,3}([^`]*)`{1,3}")
_TABLE_RULE = re.compile(r"^[ \t]*(?:\|[ \t]*)?:?-{3,}:?(?:[ \t]*\|[ \t]*:?-{3,}:?)*[ \t]*(?:\|[ \t]*)?$", re.M)
_ENTITY = re.compile(r"&(nbsp|amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);")


def _heading(match: re.Match) -> str:
    """A heading's text, without its closing sequence of #s (only after a space: "C#" keeps its #)."""
    text = match.group(1).strip()
    closed = text.rstrip("#")
    return closed.rstrip() if closed != text and (not closed or closed[-1] in " \t") else text


def drop_blocks(text: str) -> str:
    """Remove <head>, <script>, <style>, <svg>, <noscript> and <iframe> blocks with their content. An element
    that is never closed is left (its tags are stripped later); once one has no closing tag, later ones of the
    same name cannot have one either, so no search for it is repeated (linear time)."""
    parts: list[str] = []
    done = pos = 0
    unclosed: set[str] = set()
    while True:
        opening = _BLOCK_OPEN.search(text, pos)
        if opening is None:
            break
        name = opening.group(1).lower()
        closing = None
        if name not in unclosed:
            closing = re.compile(rf"</{name}\s*>", re.I).search(text, opening.end())
            if closing is None:
                unclosed.add(name)
        if closing is None:
            pos = opening.end()
            continue
        parts.append(text[done:opening.start()])
        parts.append(" ")
        done = pos = closing.end()
    parts.append(text[done:])
    return "".join(parts)


def _entity(match: re.Match) -> str:
    import html

    return html.unescape(match.group(0))


# strip_markdown's passes, in order: (pattern, replacement) or a function of the text, each with the strings of
# which the text must hold one for the pass to change anything (None: always run). A pass whose strings are all
# absent is skipped: `in` is a memchr, while a pattern anchored at "^" or starting with an alternation is tried
# at every position (on MDN's texts, skipping halves the clean-up's time; the result is the same text).
_MARKDOWN_PASSES = (
    ((_HTML_COMMENT, " "), ("<!--",)), (drop_blocks, ("<",)), ((_FENCED_CODE, " "), ("```", "~~~")),
    ((_IMAGE, " "), ("![",)), ((_IMAGE_REF, " "), ("![",)), ((_LINK_DEF, " "), ("]:",)),
    ((_LINK, r"\1"), ("](",)), ((_LINK_REF, r"\1"), ("][",)), ((_AUTOLINK, " "), ("<http",)),
    ((_HTML_TAG, " "), ("<",)), ((_BARE_URL, " "), ("http",)), ((_TABLE_RULE, " "), ("---",)),
    ((_HRULE, " "), ("-", "*", "_")), ((_SETEXT, ""), ("=", "-")), ((_HEADING, _heading), ("#",)),
    ((_BLOCKQUOTE, ""), (">",)), ((_LIST_MARK, ""), None), ((_STRIKE, r"\1"), ("~~",)),
    ((_EMPHASIS, r"\2"), ("*", "_")), ((_EMPHASIS, r"\2"), ("*", "_")),  # twice: nested emphasis such as **_word_**
    ((_INLINE_CODE, r"\1"), ("`",)), (lambda text: text.replace("|", " "), ("|",)), ((_ENTITY, _entity), ("&",)),
)


def strip_markdown(text: str) -> str:
    """Markdown/HTML to plain prose: keep link and emphasis text, drop code, comments, images, tags, URLs. Each
    pass is linear in the text; the read's time budget is checked between them (guard.check_time)."""
    if not text:
        return ""
    for step, needles in _MARKDOWN_PASSES:
        check_time()
        if needles is not None and not any(needle in text for needle in needles):
            continue
        text = step[0].sub(step[1], text) if isinstance(step, tuple) else step(text)
    return text


def strip_inline_markup(text: str) -> str:
    """Markup that can occur inside one line (links, emphasis, tags, code): for titles and excerpts.

    Unlike `strip_markdown` it leaves a leading "6. " alone: in a title that is part of the name, not a list.
    """
    text = _HTML_COMMENT.sub(" ", text)
    text = _IMAGE.sub(" ", text)
    text = _LINK.sub(r"\1", text)
    text = _HTML_TAG.sub(" ", text)
    text = _STRIKE.sub(r"\1", text)
    for _ in range(2):
        text = _EMPHASIS.sub(r"\2", text)
    text = _INLINE_CODE.sub(r"\1", text)
    return _ENTITY.sub(_entity, text)


def clean_body(text: str) -> str:
    """A whole article body: mojibake repaired, markup stripped, paragraphs kept."""
    return collapse_whitespace(strip_markdown(fix_text(text)), keep_paragraphs=True)


# --- URLs ----------------------------------------------------------------------------------------


def url_host(url: str | None) -> str | None:
    """A URL's host as the link targets compare hosts (lower case, without www.), or None."""
    if not url:
        return None
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return None
    return (host[4:] if host.startswith("www.") else host) or None


def canonical_url(url: str | None) -> str | None:
    """Normalise a URL so that variants of one page compare equal.

    https and http fold to https; host lower-cased, ``www.`` and default ports dropped; fragment and tracking
    parameters (utm_*, fbclid, WT.mc_id, ...) dropped; other parameters sorted; trailing slash dropped.
    Returns None for anything that is not an absolute http(s) URL, or is longer than MAX_URL_CHARS.
    """
    if not url:
        return None
    url = str(url).strip()
    if len(url) > MAX_URL_CHARS:
        return None
    # remembered when of a usual length (hostile input's long ones would fill memory: at most 32 MB of them)
    return _canonical(url) if len(url) <= CACHED_URL_CHARS else _canonical.__wrapped__(url)


CACHED_URL_CHARS = 512


@lru_cache(maxsize=1 << 16)  # a run asks for each article's twice (deduplication, then the metadata): 30 us each
def _canonical(url: str) -> str | None:
    if CONTROL_CHARS.search(url):  # urlsplit would drop a line end without a word
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    try:
        port = parts.port
    except ValueError:
        return None
    if port and port not in (80, 443):
        host = f"{host}:{port}"
    path = re.sub(r"/{2,}", "/", parts.path or "/")
    if len(path) > 1:
        path = path.rstrip("/")
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
    ]
    return urlunsplit(("https", host, path, urlencode(sorted(query)), ""))


def url_to_id(url: str) -> str:
    """The article id for a canonical URL: the URL without its scheme (``host/path?query``)."""
    canon = canonical_url(url) or url
    return canon.split("://", 1)[-1]


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s+(?=[A-Z0-9“\"'‘(])")


def first_sentence(text: str, max_chars: int = 120) -> str:
    """The first sentence of a text, cut at a word boundary (with an ellipsis) when longer than max_chars."""
    text = " ".join(text.split())
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0] if text else ""
    return shorten(sentence, max_chars)


def shorten(text: str, max_chars: int) -> str:
    """Cut text at a word boundary to at most max_chars, adding an ellipsis when cut."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1].rsplit(" ", 1)[0].rstrip(",;:-–— ")
    return cut + "…"


def lead_paragraph(body: str, max_chars: int = EXCERPT_CHARS) -> str:
    """The first real paragraph of a body (headings and short label lines skipped), as one line."""
    for paragraph in body.split("\n\n"):
        lines = paragraph.split("\n")
        while lines and len(lines[0].split()) < 8 and not lines[0].rstrip().endswith((".", "!", "?")):
            lines.pop(0)
        if lines:
            return shorten(" ".join(lines), max_chars)
    return shorten(body, max_chars)


_BLOCK_TAG = re.compile(
    r"</?(?:p|div|h[1-6]|ul|ol|dl|blockquote|pre|table|section|article|figure|figcaption|hr)\b[^>]*>", re.I)
_LINE_TAG = re.compile(r"<(?:br|li|dt|dd|tr)\b[^>]*>", re.I)
# named entities other than the five that could turn text into markup (`&lt;b&gt;` stays text)
_NAMED_ENTITY = re.compile(r"&(?!(?:lt|gt|amp|quot|apos);)[A-Za-z][A-Za-z0-9]{1,31};")


def html_to_text(html_text: str) -> str:
    """An HTML body (a feed item's content, a WordPress post) as plain prose: block elements become paragraph
    breaks and named entities (`&mdash;`) characters, then the clean-up of every body (`clean_body`)."""
    import html

    text = _LINE_TAG.sub("\n", _BLOCK_TAG.sub("\n\n", html_text or ""))
    return clean_body(_NAMED_ENTITY.sub(lambda m: html.unescape(m.group(0)), text))
