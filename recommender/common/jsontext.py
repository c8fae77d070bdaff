"""Indented JSON text, the same characters as `json.dumps(obj, ensure_ascii=False, indent=N)`, made about four times
faster: Python 3.11's C encoder does not indent, so `json.dumps(..., indent=1)` runs the pure-Python encoder, one
generator step per value (1.5 CPU-s of the nightly batch's output write for MDN's 59 MB related_by_path.json).
Here a dict or list whose values are all plain scalars (a link, a list of ids) is written by the C encoder in one
call, its item separator carrying the newline and the indent; the containers around them are walked here. Anything
else (a non-string key, a value JSON encodes another way) is handed to `json.dumps` itself.
"""

from __future__ import annotations

import json
from functools import lru_cache
from json.encoder import JSONEncoder, c_make_encoder, encode_basestring  # the C functions (accelerator present)

_INFINITY = float("inf")
_SCALARS = frozenset((str, int, float, bool, type(None)))  # exactly these types: the C encoder writes them as
# the Python encoder does (a subclass goes the general way)


def dumps_indented(obj, indent: int = 1) -> str:
    """json.dumps(obj, ensure_ascii=False, indent=indent), character for character."""
    parts: list[str] = []
    _emit(obj, 0, indent, parts)
    return "".join(parts)


def scalar_text(value) -> str | None:
    """A scalar's JSON text as json.dumps writes it, or None for a container or an unknown type."""
    if isinstance(value, str):
        return encode_basestring(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value == _INFINITY:
            return "Infinity"
        if value == -_INFINITY:
            return "-Infinity"
        return float.__repr__(value)
    return None


def flat_text(obj, inner: str) -> str:
    """A dict or list of plain scalars on one line, its items separated by "," + inner (a newline and indent)."""
    return "".join(_encoder(inner)(obj, 0))


@lru_cache(maxsize=None)
def _encoder(inner: str):
    """json.dumps' own one-shot encoder for ensure_ascii=False and these separators, made once (json.dumps makes
    one per call, which costs more than a link's encoding); the Python one where there is no C accelerator."""
    if c_make_encoder is None:
        return JSONEncoder(ensure_ascii=False, separators=("," + inner, ": ")).iterencode
    return c_make_encoder(None, JSONEncoder().default, encode_basestring, None, ": ", "," + inner, False, False,
                          True)


def _emit(obj, level: int, indent: int, parts: list[str]) -> None:
    text = scalar_text(obj)
    if text is not None:
        parts.append(text)
        return
    inner = "\n" + " " * (indent * (level + 1))
    close = "\n" + " " * (indent * level)
    if isinstance(obj, dict) and obj and all(type(k) is str for k in obj):
        if all(type(v) in _SCALARS for v in obj.values()):  # a link: the C encoder, its separators the indent
            parts.append("{" + inner + flat_text(obj, inner)[1:-1] + close + "}")
            return
        parts.append("{")
        for number, (key, value) in enumerate(obj.items()):
            parts.append(("," if number else "") + inner + encode_basestring(key) + ": ")
            _emit(value, level + 1, indent, parts)
        parts.append(close + "}")
        return
    if isinstance(obj, (list, tuple)) and obj:
        if all(type(v) in _SCALARS for v in obj):  # a list of ids
            parts.append("[" + inner + flat_text(obj, inner)[1:-1] + close + "]")
            return
        parts.append("[")
        for number, value in enumerate(obj):
            parts.append(("," if number else "") + inner)
            _emit(value, level + 1, indent, parts)
        parts.append(close + "]")
        return
    # empty containers, non-string keys, other types: json itself, its lines shifted to this depth
    parts.append(json.dumps(obj, ensure_ascii=False, indent=indent).replace("\n", close))
