"""Text clean-up shared by every input format: mojibake repair, markup stripping, whitespace, URLs.

Nothing here reads files; `recommender.ingest.reader` does that and calls these functions on the strings it finds.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


# Query parameters that only track a visit and never change which page is served.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "ref", "ref_src",
        "cmpid", "ocid", "wt.mc_id", "_ga", "yclid", "spm", "share", "smid", "sr_share",
    }
)
TRACKING_PREFIXES = ("utm_", "wt.", "pk_", "mtm_", "hsa_")

EXCERPT_CHARS = 300  # an excerpt taken from a body: its lead paragraph, cut to this length

_WS = re.compile(r"[ \t\f\v\u00a0\u2000-\u200b\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


# UTF-8 four-byte sequences (emoji) read as Mac Roman start with U+F8FF, the Apple logo, which ftfy does not
# always dare to undo on its own. Real text almost never holds that private-use character.
_MAC_ROMAN_EMOJI = re.compile("\uf8ff[^\x00-\x7f]{3}")


def _undo_mac_roman(match: re.Match) -> str:
    try:
        return match.group(0).encode("mac_roman").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return match.group(0)


def fix_text(text: str) -> str:
    """Repair mojibake (UTF-8 read as cp1252 or Mac Roman), normalise to NFC, keep curly quotes."""
    if not text:
        return ""
    import ftfy  # imported on first use: URL lookups at query time do not need it

    fixed = ftfy.fix_text(text, uncurl_quotes=False, fix_line_breaks=True)
    fixed = _MAC_ROMAN_EMOJI.sub(_undo_mac_roman, fixed)
    return unicodedata.normalize("NFC", fixed)


def collapse_whitespace(text: str, keep_paragraphs: bool = True) -> str:
    """Collapse runs of spaces; keep single blank lines between paragraphs when asked."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_WS.sub(" ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    if keep_paragraphs:
        return _BLANK_LINES.sub("\n\n", text).strip()
    return " ".join(text.split())


def clean_field(value: object) -> str:
    """A short metadata field (title, excerpt): repaired, markup removed, one line."""
    if value is None:
        return ""
    text = fix_text(str(value))
    text = strip_inline_markup(text)
    return collapse_whitespace(text, keep_paragraphs=False)


# --- Markdown / HTML -------------------------------------------------------------------------------

_HTML_COMMENT = re.compile(r"<!--.*?(-->|\Z)", re.S)
_DROP_BLOCKS = re.compile(r"<(head|script|style|svg|noscript|iframe)\b[^>]*>.*?</\1\s*>", re.S | re.I)
_FENCED_CODE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_IMAGE_REF = re.compile(r"!\[([^\]]*)\]\[[^\]]*\]")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()]|\([^)]*\))*\)")
_LINK_REF = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_LINK_DEF = re.compile(r"^\s*\[[^\]]+\]:\s*\S+.*$", re.M)
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
_BARE_URL = re.compile(r"https?://\S+")
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*(.*?)\s*#*\s*$", re.M)
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$", re.M)
_BLOCKQUOTE = re.compile(r"^\s{0,3}>\s?", re.M)
_LIST_MARK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+", re.M)
_HRULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$", re.M)
_EMPHASIS = re.compile(r"(\*\*|__|\*|(?<!\w)_)(?=\S)(.+?)(?<=\S)\1(?!\w)")
_STRIKE = re.compile(r"~~(.+?)~~")
_INLINE_CODE = re.compile(r"`{1,3}([^`]*)`{1,3}")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", re.M)
_ENTITY = re.compile(r"&(nbsp|amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);")


def _entity(match: re.Match) -> str:
    import html

    return html.unescape(match.group(0))


def strip_markdown(text: str) -> str:
    """Markdown/HTML to plain prose: keep link and emphasis text, drop code, comments, images, tags, URLs."""
    if not text:
        return ""
    text = _HTML_COMMENT.sub(" ", text)
    text = _DROP_BLOCKS.sub(" ", text)
    text = _FENCED_CODE.sub(" ", text)
    text = _IMAGE.sub(" ", text)
    text = _IMAGE_REF.sub(" ", text)
    text = _LINK_DEF.sub(" ", text)
    text = _LINK.sub(r"\1", text)
    text = _LINK_REF.sub(r"\1", text)
    text = _AUTOLINK.sub(" ", text)
    text = _HTML_TAG.sub(" ", text)
    text = _BARE_URL.sub(" ", text)
    text = _TABLE_RULE.sub(" ", text)
    text = _HRULE.sub(" ", text)
    text = _SETEXT.sub("", text)
    text = _HEADING.sub(r"\1", text)
    text = _BLOCKQUOTE.sub("", text)
    text = _LIST_MARK.sub("", text)
    text = _STRIKE.sub(r"\1", text)
    for _ in range(2):  # nested emphasis such as **_word_**
        text = _EMPHASIS.sub(r"\2", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = text.replace("|", " ")
    text = _ENTITY.sub(_entity, text)
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


def canonical_url(url: str | None) -> str | None:
    """Normalise a URL so that variants of one page compare equal.

    https and http fold to https; host lower-cased, ``www.`` and default ports dropped; fragment and tracking
    parameters (utm_*, fbclid, WT.mc_id, ...) dropped; other parameters sorted; trailing slash dropped.
    Returns None for anything that is not an absolute http(s) URL.
    """
    if not url:
        return None
    url = str(url).strip()
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
