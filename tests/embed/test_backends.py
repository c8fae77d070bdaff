"""Embedding backends on the real packaged model: same vectors within bf16 rounding, distinct fingerprints,
fallback when a backend is unavailable."""

import sys

import numpy as np
import pytest

from recommender.embed.embedder import SentenceTransformerEmbedder, cpu_has_bf16, get_embedder

pytestmark = pytest.mark.model

TEXTS = [
    "Regulators want chatbots to disclose that they are not human.",
    "The keeper saved two penalties in the cup final shoot-out. " * 12,  # long enough to be truncated at 256
    "Mix rye flour and water and feed the starter daily.",
]


@pytest.fixture(scope="module")
def fp32_vectors():
    return get_embedder(None, backend="torch-fp32").encode(TEXTS)


def test_openvino_backend_matches_pytorch_fp32(fp32_vectors, tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    monkeypatch.setenv("RECOMMENDER_MODELS", str(tmp_path))
    embedder = get_embedder(None, backend="openvino")
    assert embedder.backend == "openvino"
    vectors = embedder.encode(TEXTS, batch_size=2)
    assert vectors.shape == fp32_vectors.shape == (3, 384)
    assert (vectors * fp32_vectors).sum(axis=1).min() > 0.999
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    manifest = next(tmp_path.glob("*/openvino/manifest.json"))  # converted once, with a manifest, under models/
    assert "weights_fingerprint" in manifest.read_text()
    fp32 = get_embedder(None, backend="torch-fp32")
    assert embedder.fingerprint != fp32.fingerprint  # an index or cache never mixes the two
    assert embedder.fingerprint.split("-")[0] == fp32.fingerprint.split("-")[0]  # same weights


def test_bf16_autocast_matches_fp32_where_the_cpu_has_bf16(fp32_vectors):
    embedder = get_embedder(None, backend="torch-bf16")
    if not cpu_has_bf16():
        assert embedder.backend == "torch-fp32"  # falls back rather than run emulated bf16
        return
    assert embedder.backend == "torch-bf16"
    assert (embedder.encode(TEXTS) * fp32_vectors).sum(axis=1).min() > 0.999


def test_auto_falls_back_to_pytorch_without_openvino(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now raises ImportError
    embedder = get_embedder(None, backend="auto")
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert embedder.backend == ("torch-bf16" if cpu_has_bf16() else "torch-fp32")
    assert "OpenVINO backend unavailable" in caplog.text


@pytest.mark.parametrize("pooling,supported", [({"pooling_mode": "mean", "include_prompt": True}, True),
                                               ({"pooling_mode": ["mean"]}, True),
                                               ({"pooling_mode": "cls"}, False),
                                               ({"pooling_mode": ["mean", "max"]}, False)])
def test_openvino_reads_the_pooling_config_newer_sentence_transformers_save(tmp_path, pooling, supported):
    """A model folder saved by sentence-transformers 5.x or later (a tuned copy of the packaged model, say) writes its
    pooling as "pooling_mode": the OpenVINO backend takes mean pooling in that form too, and refuses any other."""
    import json
    import shutil

    from recommender.embed.embedder import packaged_model_path
    from recommender.embed.openvino_embedder import UnsupportedModel, check_supported

    source = packaged_model_path()
    modules = json.loads((source / "modules.json").read_text())
    for name in ("modules.json", "sentence_bert_config.json"):
        shutil.copy(source / name, tmp_path / name)
    folder = tmp_path / next(m["path"] for m in modules if m["type"].endswith("Pooling"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"embedding_dimension": 384, **pooling}))
    if supported:
        assert check_supported(tmp_path) == 256
    else:
        with pytest.raises(UnsupportedModel):
            check_supported(tmp_path)
