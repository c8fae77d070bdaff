"""The lexical index updated with its IDF frozen: unchanged rows kept, new and changed rows transformed with the
frozen weights exactly as a fit would have made them, and a full refit once the corpus drifted too far."""

import json

import numpy as np

from recommender import build_index
from recommender.build import LEXICAL_DRIFT
from recommender.lexindex import LexicalIndex, mention_matrix
from recommender.manifest import read_manifest

WORDS = ("python asyncio event loop coroutine task future socket stream queue lock thread pool process "
         "signal timer file path json parser decoder encoder http server client request response cookie").split()


def _rows(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(f"Title {i} {WORDS[i % len(WORDS)]}", "", " ".join(rng.choice(WORDS, 40))) for i in range(n)]


def test_frozen_update_keeps_rows_and_transforms_like_the_fit():
    ids = [f"a{i}" for i in range(30)]
    rows = _rows(30)
    old = LexicalIndex.build(ids, rows)
    # the frozen transform reproduces the fitted rows (same vocabulary, IDF, sublinear tf, l2 norm)
    refit = LexicalIndex(old.transform_many([r[0] + " \n" + r[2] for r in rows]), old.vocabulary, old.idf,
                         old.mentions)
    assert abs(refit.tfidf - old.tfidf).max() < 1e-6
    new_ids = ids[1:] + ["new"]  # a0 removed, one added
    new_rows = rows[1:] + [("A new page about asyncio", "", "event loop coroutine task")]
    new_rows[4] = (new_rows[4][0], "", "changed body socket stream")  # a5 changed
    new, transformed = old.updated(ids, new_ids, new_rows)
    assert transformed == 2 and new.count == 30
    assert new.vocabulary == old.vocabulary and np.array_equal(new.idf, old.idf)
    for r, article_id in enumerate(new_ids):
        if article_id in ("new", "a5"):
            continue
        assert (new.tfidf[r] != old.tfidf[ids.index(article_id)]).nnz == 0  # copied as is
    expected = old.transform_many(["A new page about asyncio \nevent loop coroutine task"])
    assert abs(new.tfidf[29] - expected).max() < 1e-7
    # mentions are found again in full, weighted with the names' frozen weights (new names get theirs now)
    expected_mentions, names = mention_matrix(new_ids, [r[0] for r in new_rows],
                                              [r[0] + " \n" + r[2] for r in new_rows], old.name_weights)
    assert (new.mentions != expected_mentions).nnz == 0 and new.name_weights == names
    assert all(names[name] == weight for name, weight in old.name_weights.items() if name in names)


def _write(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")


def test_build_updates_incrementally_until_the_drift_threshold(tmp_path):
    records = [{"id": f"p{i}", "title": f"Page {i} {WORDS[i % len(WORDS)]}", "text": " ".join(
        WORDS[(i + j) % len(WORDS)] for j in range(30))} for i in range(60)]
    feed = tmp_path / "feed.jsonl"
    _write(feed, records)
    index = tmp_path / "index"
    build_index(feed, index, model="hashing", progress=False)
    assert read_manifest(index).stats["lexical_update"] == "full"
    records[3]["text"] += " extra words"
    _write(feed, records)
    build_index(feed, index, model="hashing", progress=False)
    stats = read_manifest(index).stats
    assert stats["lexical_update"] == "incremental" and stats["lexical_transformed"] == 1
    assert stats["lexical_base"] == {"count": 60, "churn": 1}
    for r in records[:int(LEXICAL_DRIFT * 60) + 1]:
        r["text"] += " more"
    _write(feed, records)
    build_index(feed, index, model="hashing", progress=False)
    stats = read_manifest(index).stats
    assert stats["lexical_update"] == "full" and stats["lexical_base"] == {"count": 60, "churn": 0}
