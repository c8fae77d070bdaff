"""The OpenVINO embedding backend: the same sentence-transformers model, converted locally and run by OpenVINO.

The conversion reads the packaged weights with transformers and `openvino.convert_model` (no hub, no optimum,
no sentence-transformers extra, which would downgrade transformers). The converted model is cached under the
models folder with a manifest naming the source weights' fingerprint and the OpenVINO version; a mismatch
converts again. On a CPU with bf16 (AVX-512 BF16 / AMX) OpenVINO runs in bf16; vectors then differ from the
PyTorch fp32 ones by a cosine of about 0.99998, so the backend is part of the model fingerprint and an index or
vector cache made with another backend is never mixed with this one.

Only models that are a transformer + mean pooling (+ normalisation) are converted; others stay on PyTorch.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ..common.atomic import read_json_object
from .prepare import DEFAULT_MAX_TOKENS

log = logging.getLogger(__name__)

MODELS_ENV = "RECOMMENDER_MODELS"
THREADS_ENV = "RECOMMENDER_OPENVINO_THREADS"  # inference threads (default: all cores); set by the Ray engine
EXPORT_VERSION = 1
COMPILED_CACHE = "compiled"  # OpenVINO's compiled-model cache, inside the conversion's folder


class UnsupportedModel(RuntimeError):
    """A model this backend cannot run faithfully (other pooling, extra layers)."""


def models_root() -> Path:
    """Where converted models are cached: $RECOMMENDER_MODELS, else the user's cache folder
    ($XDG_CACHE_HOME/recommender/models, ~/.cache/recommender/models by default), never the checkout."""
    if os.environ.get(MODELS_ENV):
        return Path(os.environ[MODELS_ENV]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return cache / "recommender" / "models"


def check_supported(path: Path) -> int:
    """The max sequence length, if the model is transformer + mean pooling (+ normalize); else raise."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = next(m for m in modules if m["type"].endswith("Pooling"))
        pool = json.loads((path / pooling["path"] / "config.json").read_text())
        config = json.loads((path / "sentence_bert_config.json").read_text())
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise UnsupportedModel(f"{path}: not a sentence-transformers folder this backend understands ({exc})")
    if "pooling_mode" in pool:  # the form sentence-transformers 5.x and later save: "mean", or a list of modes
        mode = pool["pooling_mode"]
        mean_only = mode == "mean" or mode == ["mean"]
    else:
        mean_only = pool.get("pooling_mode_mean_tokens") and not any(pool.get(k) for k in (
            "pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens"))
    if kinds[:2] != ["Transformer", "Pooling"] or set(kinds[2:]) - {"Normalize"} or not mean_only:
        raise UnsupportedModel(f"{path}: modules {kinds} with pooling {pool} are not transformer + mean pooling")
    return int(config.get("max_seq_length", DEFAULT_MAX_TOKENS))


def openvino_runs_bf16() -> bool:
    """Whether OpenVINO's CPU plugin will infer in bf16 on this machine (its own capability report)."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVINOEmbedder:
    """Mean-pooled, normalised vectors from an OpenVINO conversion of a local sentence-transformers model."""

    def __init__(self, path: Path, weights_fingerprint: str, name: str | None = None, language: str = "en"):
        import openvino  # noqa: F401 - fail early (ImportError) when the package is missing

        self.path = Path(path)
        self.name = name or self.path.name
        self.language = language  # its texts' language (embedder.language_of_model)
        self.max_tokens = check_supported(self.path)
        self.weights_fingerprint = weights_fingerprint
        self.precision = "bf16" if openvino_runs_bf16() else "fp32"
        self._compiled = None
        self._tokenizer = None
        self._dimension: int | None = None

    @property
    def fingerprint(self) -> str:
        return f"{self.weights_fingerprint}-openvino-{self.precision}"

    @property
    def backend(self) -> str:
        return "openvino"

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            config = json.loads((self.path / "config.json").read_text())
            self._dimension = int(config["hidden_size"])
        return self._dimension

    @property
    def export_dir(self) -> Path:
        return models_root() / f"{self.name}-{self.weights_fingerprint}" / "openvino"

    def _load(self):
        if self._compiled is None:
            import openvino as ov

            from .tokenizer import load_tokenizer

            xml = ensure_export(self.path, self.export_dir, self.weights_fingerprint)
            self._tokenizer = load_tokenizer(self.path, self.export_dir / "manifest.json", self.max_tokens)
            core = ov.Core()
            try:  # the compiled model is kept beside the conversion: the next run reads it instead of compiling
                core.set_property({"CACHE_DIR": str(self.export_dir / COMPILED_CACHE)})
            except Exception as exc:  # noqa: BLE001 - no cache only costs time
                log.debug("OpenVINO compiled-model cache unavailable: %s", exc)
            config = {"PERFORMANCE_HINT": "THROUGHPUT"}
            if os.environ.get(THREADS_ENV):
                config["INFERENCE_NUM_THREADS"] = int(os.environ[THREADS_ENV])
            self._compiled = core.compile_model(str(xml), "CPU", config)
            self._in_flight = max(1, int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        return self._compiled

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        compiled = self._load()
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths share a batch: less padding
        # A few requests in flight keep both cores busy. No Python callbacks: OpenVINO's threads then never need
        # the GIL, which is what deadlocks AsyncInferQueue when a compiled model is freed while torch is loaded.
        requests = [compiled.create_infer_request() for _ in range(self._in_flight)]
        pending: list[tuple[object, int, np.ndarray] | None] = [None] * len(requests)
        pooled: dict[int, np.ndarray] = {}

        def collect(slot: int) -> None:
            request, start, mask = pending[slot]
            request.wait()
            hidden = request.get_output_tensor(0).data
            weights = mask[..., None].astype(np.float32)
            pooled[start] = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            pending[slot] = None

        for number, start in enumerate(range(0, len(texts), batch_size)):
            slot = number % len(requests)
            if pending[slot] is not None:
                collect(slot)
            batch = [texts[i] for i in order[start:start + batch_size]]
            inputs = self._tokenizer(batch)  # padded to the longest text, truncated at max_tokens
            requests[slot].start_async(inputs)
            pending[slot] = (requests[slot], start, inputs["attention_mask"])
        for slot in range(len(requests)):
            if pending[slot] is not None:
                collect(slot)
        vectors = np.concatenate([pooled[s] for s in sorted(pooled)]).astype(np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        out = np.empty_like(vectors)
        out[order] = vectors
        return out


def converted_bytes(source: Path) -> int:
    """What the conversion's folder will hold: the fp32 weights twice, once converted (`model.bin`) and once in
    OpenVINO's compiled-model cache (for all-MiniLM-L6-v2: 2 x 90.9 MB; measured, 182.3 MB in all)."""
    weights = [f.stat().st_size for f in source.iterdir() if f.suffix in (".safetensors", ".bin") and f.is_file()]
    return 2 * max(weights, default=0)


def ensure_export(source: Path, folder: Path, weights_fingerprint: str) -> Path:
    """The converted model's XML, converting (atomically, into a fresh folder) when missing or stale."""
    import openvino as ov

    xml = folder / "model.xml"
    manifest_path = folder / "manifest.json"
    expected = {"source": str(source), "weights_fingerprint": weights_fingerprint, "openvino": ov.__version__,
                "export_version": EXPORT_VERSION}
    recorded = read_json_object(manifest_path)
    if xml.exists() and all(recorded.get(k) == v for k, v in expected.items() if k != "source"):
        return xml
    log.info("converting the model to OpenVINO once: about %.0f MB in %s, with the compiled model OpenVINO keeps "
             "there (set $%s to keep it elsewhere)", converted_bytes(source) / 1e6, folder, MODELS_ENV)
    import torch
    import transformers
    from transformers import AutoModel, AutoTokenizer

    with warnings.catch_warnings():  # tracer and deprecation warnings of the conversion say nothing to a user
        warnings.simplefilter("ignore")
        verbosity = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
            model = AutoModel.from_pretrained(str(source), local_files_only=True).eval()
            example = dict(tokenizer(["an example sentence"], return_tensors="pt"))
            with torch.inference_mode():
                converted = ov.convert_model(model, example_input=example)
        finally:
            transformers.logging.set_verbosity(verbosity)
            transformers.logging.enable_progress_bar()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".openvino-", dir=folder.parent))
    try:
        ov.save_model(converted, str(tmp / "model.xml"), compress_to_fp16=False)  # keep fp32 weights
        (tmp / "manifest.json").write_text(json.dumps(expected, indent=2) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return xml
