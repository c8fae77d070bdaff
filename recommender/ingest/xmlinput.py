"""XML inputs: WordPress exports (WXR), RSS 2.0 and Atom feeds, recognised by their root element and read safely.

``.rss`` and ``.atom`` files are always read; a ``.xml`` file only when its root element is ``<rss>`` or
``<feed>`` (`is_feed_file`, which the reader uses to count other XML files as ignored). Every file is first parsed
with defusedxml, which refuses entity declarations (the billion-laughs expansion) and external references (no
file or URL is ever fetched); a file over the size limit is refused before it is read. Then ``<rss>`` with the
WordPress export namespace goes to `wxr`, other ``<rss>`` and Atom ``<feed>`` to `feeds` (feedparser, given
those same checked bytes). A file that cannot be used is one `Problem` naming it and the reason.
"""

from __future__ import annotations

import re
from pathlib import Path

from .article import Article, Problem
from .feeds import read_feed
from .filebytes import regular_size
from .wxr import is_wxr, read_wxr

XML_SUFFIXES = {".xml", ".rss", ".atom"}
FEED_ROOTS = ("rss", "feed")
SNIFF_BYTES = 65536
_SKIP = re.compile(rb"<!--.*?-->|<\?.*?\?>", re.S)
_FIRST_ELEMENT = re.compile(rb"<([A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")


def root_name(head: bytes) -> str | None:
    """The local name of the first element in the start of an XML document (after its declaration, comments,
    processing instructions and DOCTYPE), or None."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head.decode("utf-16", "ignore").encode("utf-8")
    match = _FIRST_ELEMENT.search(_SKIP.sub(b" ", head))
    return match.group(2).decode("ascii").lower() if match else None


def is_feed_file(path: Path) -> bool:
    """A file the reader reads as XML: a .rss or .atom file, or a .xml file whose root is <rss> or <feed>."""
    suffix = path.suffix.lower()
    if suffix != ".xml":
        return suffix in XML_SUFFIXES
    try:
        regular_size(path)  # a FIFO would block the open
        with open(path, "rb") as fh:
            return root_name(fh.read(SNIFF_BYTES)) in FEED_ROOTS
    except OSError:
        return True  # read, so that the reason it cannot be is reported


def read_xml_file(path: Path, rel: str, max_bytes: int) -> tuple[list[Article], list[Problem]]:
    """The articles of one WXR export, RSS or Atom feed, and its problems (the file's own, or one per item)."""
    try:
        size = regular_size(path)
        if size > max_bytes:
            return [], [Problem(rel, f"file too large ({size} bytes, limit {max_bytes})")]
        data = path.read_bytes()
    except OSError as exc:
        return [], [Problem(rel, f"cannot read: {exc.strerror or exc}")]
    if not data.strip():
        return [], [Problem(rel, "empty file")]
    root, reason = _checked_tree(data)
    if root is None:
        return [], [Problem(rel, reason)]
    tag = root.tag
    if tag == "rss":
        return read_wxr(root, rel) if is_wxr(root) else read_feed(data, rel)
    if tag.rsplit("}", 1)[-1] == "feed":  # Atom 1.0 (or 0.3)
        return read_feed(data, rel)
    name = tag.rsplit("}", 1)[-1]
    return [], [Problem(rel, f"not an RSS or Atom feed or a WordPress export (root element <{name}>)")]


def _checked_tree(data: bytes):
    """(the parsed root element, None), or (None, why the document is refused)."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException, EntitiesForbidden
    from defusedxml.ElementTree import fromstring

    try:
        return fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True), None
    except EntitiesForbidden:
        return None, "refused: the document declares XML entities (<!ENTITY>), which could expand without limit"
    except DefusedXmlException as exc:  # an external DTD or reference: nothing is ever fetched
        return None, f"refused: the document refers to something outside it ({type(exc).__name__})"
    except ParseError as exc:
        return None, f"not well-formed XML: {exc}{_near(data, exc.position)}"
    except ValueError as exc:  # e.g. an encoding expat does not know
        return None, f"cannot read the XML: {exc}"


def _near(data: bytes, position: tuple[int, int]) -> str:
    """The text at a parse error's (line, column), shown after the message: ` near '&nbsp; and'`."""
    line, column = position
    lines = data.splitlines()
    if not 0 < line <= len(lines):
        return ""
    snippet = lines[line - 1][column:column + 16].decode("utf-8", "replace").strip()
    return f" near {snippet!r}" if snippet else ""
