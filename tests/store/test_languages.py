"""The lexical index's language-dependent parts follow the embedding model's declaration: English leaves out its
stop words and closes up possessives and contractions; a multilingual model's index ("multi") does neither, so a
French or German page keeps "die", "les" or "l'eau" as words. The index records its language and reads new texts
with it."""

import numpy as np
import pytest

from recommender.embed.embedder import HashingEmbedder, language_of_model
from recommender.store.lexical import language_of
from recommender.store.lexindex import LexicalIndex
from recommender.store.lexshards import build_sharded

ROWS = [("The river", "", "the water of the river and the boat's sail"),
        ("Die Brücke", "", "die Brücke über den Fluss und the boat's mast"),
        ("L'eau", "", "l'eau de la rivière, die Seine"),
        ("Boats", "", "a mast and a sail"),
        ("Ferries", "", "ferry deck harbour"),
        ("Harbours", "", "harbour quay ferry"),
        ("Quays", "", "quay deck water"),
        ("Canals", "", "canal lock keeper")]
IDS = [f"p/{i}" for i in range(len(ROWS))]


def test_english_and_multilingual_indexes_differ_as_their_languages_say(tmp_path):
    english = LexicalIndex.build(IDS, ROWS)
    multi = LexicalIndex.build(IDS, ROWS, language="multi")
    assert english.language == "en" and multi.language == "multi"
    assert "the" not in english.vocabulary and "and" not in english.vocabulary  # English stop words left out
    assert "and" in multi.vocabulary and "die" in multi.vocabulary  # kept: no stop words for "multi"
    assert "boat" in english.vocabulary  # "boat's" closed up to "boat" in English
    assert "s" in multi.vocabulary  # "boat's" split at the apostrophe, as any other punctuation
    english.save(tmp_path / "en.npz", tmp_path / "en.json")
    multi.save(tmp_path / "multi.npz", tmp_path / "multi.json")
    again = LexicalIndex.load(tmp_path / "multi.npz", tmp_path / "multi.json")
    assert again.language == "multi"
    row = again.transform("the boat's river")
    assert np.array_equal(row.toarray(), multi.transform("the boat's river").toarray())
    assert row[0, multi.vocabulary.index("s")] > 0  # read as the index was built
    assert LexicalIndex.load(tmp_path / "en.npz", tmp_path / "en.json").language == "en"


def test_the_sharded_fit_and_an_update_keep_the_language():
    multi = LexicalIndex.build(IDS, ROWS, language="multi")
    sharded = build_sharded(IDS, ROWS, shards=2, language="multi")
    assert sharded.language == "multi" and sharded.vocabulary == multi.vocabulary
    assert np.array_equal(sharded.idf, multi.idf)
    updated, _ = multi.updated(IDS, IDS + ["p/9"], ROWS + [("Die Fähre", "", "die Fähre and the boat's deck")])
    assert updated.language == "multi"


def test_a_model_declares_its_language():
    assert language_of_model("all-MiniLM-L6-v2") == "en"
    assert language_of_model("paraphrase-multilingual-MiniLM-L12-v2") == "multi"
    assert HashingEmbedder().language == "en"
    with pytest.raises(ValueError, match="unknown language 'xx'"):
        language_of("xx")


def test_an_embedder_that_declares_no_language_builds_an_english_index(tmp_path):
    """A custom embedder written before `language` existed (or a stub that only records a model's identity, as
    scripts/bench_scale.py's) still builds: its index is English."""
    from recommender.batch.build import update_index
    from recommender.ingest.reader import read_corpus
    from recommender.rank.index import Index

    from conftest import DEMO

    class OldEmbedder(HashingEmbedder):
        def __getattribute__(self, name):
            if name == "language":
                raise AttributeError(name)
            return super().__getattribute__(name)

    update_index(tmp_path / "idx", read_corpus(DEMO), OldEmbedder(), progress=False)
    with Index.open(tmp_path / "idx") as index:
        assert index.data.lexical.language == "en" and "the" not in index.data.lexical.vocabulary
