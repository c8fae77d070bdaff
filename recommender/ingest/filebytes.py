"""A corpus file's bytes and text: the size limit, and the decoding every reader shares (UTF-8 with or without a
byte-order mark, UTF-16/UTF-32 with one; anything else is refused with the reason)."""

from __future__ import annotations

import codecs
import errno
import stat
from pathlib import Path

from .guard import IngestError

MAX_FILE_BYTES = 50 * 1024 * 1024
# byte-order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one)
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"))


def regular_size(path: Path) -> int:
    """The size of a regular file (its target's, for a symbolic link); OSError for anything else a corpus may hold
    under an article's name: a FIFO, whose read waits for a writer forever, a device (/dev/zero never ends)."""
    status = path.stat()
    if not stat.S_ISREG(status.st_mode):
        raise OSError(errno.EINVAL, "not a regular file (a FIFO, a device or a socket)", str(path))
    return status.st_size


def link_outside(path: Path, root: Path) -> str | None:
    """Why `path`, found under the corpus folder `root`, is not read, or None: a symbolic link whose target lies
    outside the folder. A link committed into a content folder would otherwise publish any file the batch can read
    (/etc/passwd, a key) as an article; a link to a file inside the folder is read as usual, a broken one reports
    itself when read (os.walk does not follow links to folders)."""
    if not path.is_symlink():
        return None
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # broken, or a loop: reading it says so
        return None
    if target.is_relative_to(root.resolve()):
        return None
    return f"a symbolic link to a file outside the corpus folder ({target}); not read"


def read_bytes(path: Path) -> bytes:
    """File contents; raise IngestError for empty or oversized files (OSError when unreadable or not a regular
    file)."""
    size = regular_size(path)
    if size > MAX_FILE_BYTES:
        raise IngestError(f"file too large ({size} bytes, limit {MAX_FILE_BYTES})")
    data = path.read_bytes()
    if not data.strip():
        raise IngestError("empty file")
    return data


def read_text(path: Path) -> str:
    """File contents as text; raise IngestError for empty, binary, oversized or undecodable files. UTF-8 (with
    or without a byte-order mark), or UTF-16/UTF-32 with one."""
    return decode_text(read_bytes(path))


def decode_text(data: bytes) -> str:
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise IngestError(f"not valid {encoding.upper()} (bytes at offset {exc.start})") from None
    if b"\x00" in data[:8192]:
        head = data[:8192]
        if head.count(b"\x00") * 3 > len(head):  # every other byte: text in UTF-16 without its byte-order mark
            raise IngestError("UTF-16 (or UTF-32) text without a byte-order mark; save it as UTF-8")
        raise IngestError("binary file (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        raise IngestError(f"not valid UTF-8 (byte 0x{bad:02x} at offset {exc.start})") from None
