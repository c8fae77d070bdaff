"""The text preparation's window length follows the model's max sequence length (issue 28): a model that reads 128
word pieces gets windows of half the words, recorded in the manifest, and its index opens and batches again
without re-embedding; all-MiniLM-L6-v2 (256) keeps the windows every index was built with."""

import json

from recommender import Index
from recommender.batch.build import build_index
from recommender.batch.nightly import run_batch
from recommender.embed.embedder import HashingEmbedder, SentenceTransformerEmbedder, packaged_model_path, \
    preparation_for
from recommender.embed.openvino_embedder import check_supported
from recommender.embed.prepare import Preparation
from recommender.rank.policy import Policy
from recommender.store.manifest import read_manifest

WORDS = 400  # windows of 150 words (stride 120): 4 a body; of 75 words (stride 60): 7


class ShortModel(HashingEmbedder):
    """The hashing embedder, declaring a model that reads at most 128 word pieces."""

    max_tokens = 128

    def __init__(self):
        super().__init__(64)
        self.name = "short-model"

    @property
    def fingerprint(self) -> str:
        return "short-model-v1"


def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    lines = [json.dumps({"id": f"a{i}", "title": f"Article {i}",
                         "text": " ".join(f"w{(i * 7 + j) % 90}" for j in range(WORDS))}) for i in range(3)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_windows_follow_the_models_max_sequence_length(tmp_path):
    build_index(corpus(tmp_path), tmp_path / "short", embedder=ShortModel(), progress=False)
    build_index(corpus(tmp_path), tmp_path / "default", embedder=HashingEmbedder(64), progress=False)
    short, default = read_manifest(tmp_path / "short"), read_manifest(tmp_path / "default")
    assert (short.preparation["window_words"], short.preparation["stride_words"]) == (75, 60)
    assert short.model["max_tokens"] == 128 and "max_tokens" not in default.model  # the hashing one declares none
    assert (default.preparation["window_words"], default.preparation["stride_words"]) == (150, 120)
    assert short.stats["windows"] == 3 * (1 + 7) and default.stats["windows"] == 3 * (1 + 4)  # the head, then each
    with Index.open(tmp_path / "short") as index:  # not refused: its preparation is this version's for its model
        assert index.data.preparation.window_words == 75 and index.data.get("a2").row == 2


def test_a_batch_with_that_model_keeps_its_windows(tmp_path):
    first = run_batch(corpus(tmp_path), tmp_path / "idx", tmp_path / "out", Policy(), embedder=ShortModel(),
                      progress=False)
    again = run_batch(corpus(tmp_path), tmp_path / "idx", tmp_path / "out", Policy(), embedder=ShortModel(),
                      progress=False)
    assert (first.embedded, again.embedded, again.reused) == (3, 0, 3)
    assert read_manifest(tmp_path / "idx").preparation["window_words"] == 75


def test_minilm_keeps_todays_windows():
    assert Preparation.for_model(256) == Preparation.for_model(None) == Preparation()
    assert check_supported(packaged_model_path()) == 256  # what the OpenVINO backend reads
    pytorch = SentenceTransformerEmbedder(packaged_model_path())
    assert preparation_for(pytorch).key == Preparation().key and pytorch._model is None  # read from its config
