"""Loading the model quickly for a few texts: the tokenizer read with the `tokenizers` library once it matched
transformers, OpenVINO's compiled-model cache, the weights' fingerprint remembered by file stamps. The vectors
stay exactly those of the transformers tokenizer and a fresh compilation."""

import json
import os
import shutil

import numpy as np
import pytest

from recommender.embed import openvino_embedder, tokenizer
from recommender.embed.embedder import _weights_fingerprint, get_embedder, packaged_model_path

TEXTS = [
    "Regulators want chatbots to disclose that they are not human.",
    "asyncio.run(main()) runs the coroutine; Café naïve 東京 😀 don’t " * 30,  # past 256 tokens: truncated
    "", "Mix rye flour and water and feed the starter daily.",
]


def test_weights_fingerprint_is_remembered_by_file_stamps(tmp_path, monkeypatch):
    monkeypatch.setenv("RECOMMENDER_MODELS", str(tmp_path / "models"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    weights = model / "model.safetensors"
    weights.write_bytes(b"a" * 1000)
    first = _weights_fingerprint(model)
    memo = json.loads((tmp_path / "models" / "fingerprints.json").read_text())
    assert memo[str(model.resolve())]["digest"] == first
    stat = weights.stat()
    weights.write_bytes(b"b" * 1000)  # same size, other bytes, but the old stamp put back: the memo is trusted
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _weights_fingerprint(model) == first
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a new stamp: hashed again
    second = _weights_fingerprint(model)
    assert second != first
    weights.write_bytes(b"a" * 1000)  # the original bytes again (new stamp): the original digest
    assert _weights_fingerprint(model) == first


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A models folder holding the converted model (copied from the user's cache when it is there)."""
    pytest.importorskip("openvino")
    root = tmp_path_factory.mktemp("models")
    before = os.environ.get("RECOMMENDER_MODELS")
    user = openvino_embedder.models_root()
    os.environ["RECOMMENDER_MODELS"] = str(root)
    embedder = get_embedder(None, backend="openvino")
    source = user / embedder.export_dir.relative_to(root)
    if (source / "model.xml").exists():
        embedder.export_dir.mkdir(parents=True)
        for name in ("model.xml", "model.bin", "manifest.json"):
            shutil.copyfile(source / name, embedder.export_dir / name)
        manifest = json.loads((embedder.export_dir / "manifest.json").read_text())
        manifest.pop("tokenizer", None)  # checked again here
        (embedder.export_dir / "manifest.json").write_text(json.dumps(manifest))
    yield root
    if before is None:
        os.environ.pop("RECOMMENDER_MODELS", None)
    else:
        os.environ["RECOMMENDER_MODELS"] = before


def _vectors(monkeypatch, cache_dir, library=None):
    """Vectors of TEXTS from a fresh embedder whose compiled-model cache is cache_dir (and whose tokenizer is
    forced to `library` when given)."""
    monkeypatch.setattr(openvino_embedder, "COMPILED_CACHE", str(cache_dir))
    if library == "transformers":
        monkeypatch.setattr(tokenizer, "check_tokenizers",
                            lambda hf, path, max_tokens: {"library": "transformers", "reason": "test"})
    embedder = get_embedder(None, backend="openvino")
    vectors = embedder.encode(TEXTS, batch_size=2)
    monkeypatch.undo()
    return embedder, vectors


@pytest.mark.model
def test_fast_tokenizer_and_compiled_cache_give_the_same_vectors(models, tmp_path, monkeypatch):
    manifest_path = next(models.glob("*/openvino/manifest.json"))
    reference_embedder, reference = _vectors(monkeypatch, tmp_path / "cache-a", library="transformers")
    assert json.loads(manifest_path.read_text())["tokenizer"]["library"] == "transformers"
    assert any((tmp_path / "cache-a").iterdir())  # the compiled model was written to the cache
    manifest = json.loads(manifest_path.read_text())
    manifest.pop("tokenizer")
    manifest_path.write_text(json.dumps(manifest))
    _, fast_fresh = _vectors(monkeypatch, tmp_path / "cache-b")  # checks the tokenizers, compiles afresh
    record = json.loads(manifest_path.read_text())["tokenizer"]
    assert record["library"] == "tokenizers" and record["max_tokens"] == 256 and record["pad_token"] == "[PAD]"
    _, fast_cached = _vectors(monkeypatch, tmp_path / "cache-b")  # reads the compiled model from the cache
    assert reference.shape == (len(TEXTS), 384)
    assert np.array_equal(fast_fresh, reference) and np.array_equal(fast_cached, reference)
    # what the conversion's message announces is what its folder and the compiled cache hold
    held = sum(f.stat().st_size for folder in (manifest_path.parent, tmp_path / "cache-b")
               for f in folder.rglob("*") if f.is_file())
    announced = openvino_embedder.converted_bytes(reference_embedder.path)
    assert abs(announced - held) <= 0.05 * held, (announced, held)


@pytest.mark.model
def test_tokenizers_encode_exactly_as_transformers():
    path = packaged_model_path()
    hf = tokenizer._transformers_tokenizer(path)
    record = tokenizer.check_tokenizers(hf, path, 256)
    assert record["library"] == "tokenizers", record
    fast = tokenizer._tokenizers_encode(path, record)
    corpus = [line for line in (path / "README.md").read_text(encoding="utf-8").splitlines() if line.strip()]
    batches = [TEXTS, corpus[:40], corpus[40:90], [" ".join(corpus)] + corpus[:3]]
    for batch in batches:
        want = tokenizer._transformers_encode(hf, 256)(batch)
        got = fast(batch)
        assert sorted(got) == sorted(want) == ["attention_mask", "input_ids", "token_type_ids"]
        for key in want:
            assert got[key].dtype == want[key].dtype and np.array_equal(got[key], want[key])
    assert want["input_ids"].shape[1] == 256  # the joined text was truncated at the max length


@pytest.mark.model
def test_a_tokenizer_that_differs_on_a_probe_keeps_transformers(monkeypatch):
    path = packaged_model_path()
    hf = tokenizer._transformers_tokenizer(path)
    real = tokenizer._tokenizers_encode

    def off_by_one(path, settings):
        encode = real(path, settings)
        return lambda texts: {k: v + (k == "input_ids") * (len(texts) == 3) for k, v in encode(texts).items()}

    monkeypatch.setattr(tokenizer, "_tokenizers_encode", off_by_one)  # wrong only on the second probe batch
    record = tokenizer.check_tokenizers(hf, path, 256)
    assert record == {"library": "transformers", "reason": "the probes were tokenized differently"}
