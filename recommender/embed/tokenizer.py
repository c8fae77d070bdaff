"""The OpenVINO backend's tokenizer: the model's tokenizer.json read by the `tokenizers` library directly, once it
was shown to give the same ids as the transformers tokenizer.

Importing transformers' AutoTokenizer imports torch as well (2-5 s on this machine), which was most of the cost
of embedding a handful of articles. The `tokenizers` library is what transformers' fast tokenizers run on, so
configured with transformers' settings (padding token and side, truncation at the model's max length) it makes
the same ids. That is not assumed: the first time a converted model is used, both tokenizers encode a set of
probe texts (accents, CJK, emoji, control characters, empty text, a text past the max length, a batch of uneven
lengths to pad) and the result, with the settings, is recorded in the converted model's manifest. Only a model
whose probes matched exactly is tokenized without transformers; any difference keeps transformers for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..common.atomic import atomic_write_text, read_json_object

log = logging.getLogger(__name__)

KEYS = ("input_ids", "attention_mask", "token_type_ids")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "sentence_bert_config.json")
CHECK_VERSION = 1
PROBES = (
    ["Regulators want chatbots to disclose that they are not human.", "", "   ",
     "Café naïve ÉCOLE façade Ångström İstanbul ǅ ß ﬁ", "東京 こんにちは 안녕하세요 中文分词 ไทย العربية",
     "emoji 😀👍🏽 zero\u200bwidth no\u00a0break tab\tnew\nline\r\nbell\x07 soft\u00adhyphen combining e\u0301",
     "asyncio.run(main()) -> None; x[i] = {'k': 3.14e-2} # comment //path/to/file.py",
     "supercalifragilisticexpialidocious unbelievably tokenization HTTPServer getaddrinfo"],
    ["a long text past the model's max length, truncated: " + "the keeper saved two penalties. " * 200,
     "short", "Mix rye flour and water and feed the starter daily. " * 3],
)


Encode = Callable[[Sequence[str]], dict]


def files_digest(path: Path) -> str:
    """sha256 over the tokenizer's files (and the max length setting): a change checks the tokenizers again."""
    digest = hashlib.sha256()
    for name in TOKENIZER_FILES:
        file = path / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


def load_tokenizer(path: Path, manifest_path: Path, max_tokens: int) -> Encode:
    """An encode(texts) -> {name: int64 array} for the model at `path`, padded to the longest text and truncated
    at max_tokens: the `tokenizers` library when the converted model's manifest records that it matched
    transformers for these files and max length, else transformers (checking, and recording, first)."""
    manifest = read_json_object(manifest_path)
    record = manifest.get("tokenizer") or {}
    expected = {"check": CHECK_VERSION, "files": files_digest(path), "max_tokens": max_tokens}
    if any(record.get(k) != v for k, v in expected.items()):
        hf = _transformers_tokenizer(path)
        record = {**expected, **check_tokenizers(hf, path, max_tokens)}
        if manifest:
            try:
                atomic_write_text(manifest_path, json.dumps({**manifest, "tokenizer": record}, indent=2) + "\n")
            except OSError as exc:  # a read-only models folder: checked again next time
                log.debug("cannot record the tokenizer check in %s: %s", manifest_path, exc)
        if record["library"] != "tokenizers":
            return _transformers_encode(hf, max_tokens)
    if record["library"] == "tokenizers":
        return _tokenizers_encode(path, record)
    return _transformers_encode(_transformers_tokenizer(path), max_tokens)


def check_tokenizers(hf, path: Path, max_tokens: int) -> dict:
    """{"library": "tokenizers", settings...} when tokenizer.json configured like `hf` encodes every probe batch
    exactly as `hf` does (same arrays, same keys), else {"library": "transformers", "reason": ...}."""
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        return {"library": "transformers", "reason": "the tokenizers package is missing"}
    if not (path / "tokenizer.json").is_file():
        return {"library": "transformers", "reason": "no tokenizer.json"}
    if hf.pad_token is None or hf.pad_token_id is None:
        return {"library": "transformers", "reason": "no padding token"}
    settings = {"pad_id": int(hf.pad_token_id), "pad_token": str(hf.pad_token),
                "pad_type_id": int(getattr(hf, "pad_token_type_id", 0) or 0), "padding_side": hf.padding_side,
                "truncation_side": hf.truncation_side, "max_tokens": max_tokens}
    try:
        reference = _transformers_encode(hf, max_tokens)
        wanted = [reference(batch) for batch in PROBES]
        settings["keys"] = sorted(wanted[0])
        fast = _tokenizers_encode(path, settings)
        for batch, want in zip(PROBES, wanted):
            got = fast(batch)
            if sorted(got) != sorted(want) or any(
                    got[k].dtype != want[k].dtype or not np.array_equal(got[k], want[k]) for k in want):
                return {"library": "transformers", "reason": "the probes were tokenized differently"}
    except Exception as exc:  # noqa: BLE001 - anything odd keeps the reference tokenizer
        return {"library": "transformers", "reason": f"{type(exc).__name__}: {exc}"}
    return {"library": "tokenizers", **settings}


def _tokenizers_encode(path: Path, settings: dict) -> Encode:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.no_padding()  # tokenizer.json's own padding and truncation are not what transformers applies
    tokenizer.no_truncation()
    tokenizer.enable_truncation(max_length=int(settings["max_tokens"]), strategy="longest_first",
                                direction=settings["truncation_side"])
    tokenizer.enable_padding(direction=settings["padding_side"], pad_id=settings["pad_id"],
                             pad_type_id=settings["pad_type_id"], pad_token=settings["pad_token"])
    keys = settings.get("keys") or list(KEYS)

    def encode(texts: Sequence[str]) -> dict:
        encodings = tokenizer.encode_batch(list(texts))
        arrays = {"input_ids": [e.ids for e in encodings], "attention_mask": [e.attention_mask for e in encodings],
                  "token_type_ids": [e.type_ids for e in encodings]}
        return {k: np.array(arrays[k], dtype=np.int64).reshape(len(encodings), -1) for k in keys}

    return encode


def _transformers_tokenizer(path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def _transformers_encode(hf, max_tokens: int) -> Encode:
    def encode(texts: Sequence[str]) -> dict:
        encoded = hf(list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="np")
        return {k: np.asarray(encoded[k]) for k in KEYS if k in encoded}

    return encode
