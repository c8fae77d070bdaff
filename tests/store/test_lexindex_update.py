"""The lexical index updated with its IDF frozen: unchanged rows kept, new and changed rows transformed with the
frozen weights exactly as a fit would have made them, and a full refit once the corpus drifted too far."""

import json

import numpy as np
import pytest

from recommender import build_index
from recommender.batch.build import LEXICAL_DRIFT
from recommender.store.lexindex import LexicalIndex
from recommender.store.mentionmatrix import found_arrays, mention_matrix
from recommender.store.manifest import read_manifest

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
    at_threshold = round(LEXICAL_DRIFT * 60)  # 3 of 60: churn up to the threshold keeps the IDF frozen
    for r in records[10:10 + at_threshold - 1]:
        r["text"] += " more"
    _write(feed, records)
    build_index(feed, index, model="hashing", progress=False)
    stats = read_manifest(index).stats
    assert stats["lexical_update"] == "incremental" and stats["lexical_base"] == {"count": 60, "churn": at_threshold}
    records.append({"id": "p60", "title": "Page 60", "text": "one more page past the threshold"})
    _write(feed, records)
    build_index(feed, index, model="hashing", progress=False)
    stats = read_manifest(index).stats
    assert stats["lexical_update"] == "full" and stats["lexical_base"] == {"count": 61, "churn": 0}


def test_the_measured_threshold_is_the_policy_default():
    from recommender.rank.policy import Policy

    assert LEXICAL_DRIFT == Policy().batch.refit_drift == 0.05  # docs/batch.md: scripts/measure_drift.py


def test_term_counts_equal_scikit_learns_count_vectorizer():
    from sklearn.feature_extraction.text import CountVectorizer

    from recommender.store.lexical import TOKEN_PATTERN, normalise_apostrophes

    rows = _rows(40, seed=3)
    index = LexicalIndex.build([f"a{i}" for i in range(40)], rows)
    texts = [r[0] + " \n" + r[2] for r in _rows(15, seed=4)] + [
        "", "THE and of it", "Event-loop EVENT_loop asyncio's don’t x",
        "Ünïcödé straße İstanbul ﬁle queue-lock"]
    texts = [normalise_apostrophes(t) for t in texts]
    reference = CountVectorizer(vocabulary=index.vocabulary, stop_words="english", token_pattern=TOKEN_PATTERN,
                                dtype=np.float32).transform(texts).astype(np.float32).tocsr()
    reference.sort_indices()
    counts = index.term_counts(texts)
    assert reference.nnz > 100 and counts.shape == reference.shape
    assert np.array_equal(counts.indptr, reference.indptr) and np.array_equal(counts.indices, reference.indices)
    assert np.array_equal(counts.data, reference.data)


def test_occurs_finds_a_name_exactly_where_the_word_scan_does():
    from recommender.store.lexindex import names_in, occurs

    rng = np.random.default_rng(5)
    vocab = ["event", "loop", "json", "ab", "a", "é", "x1", "loops"]
    seps = [" ", "-", ", ", "_", "", ".", "\n", "é"]
    names = {"event loop", "loop", "json ab", "a", "x1 event loop json", "é", "event"}
    for _ in range(400):
        text = "".join(rng.choice(vocab) + rng.choice(seps) for _ in range(rng.integers(0, 12)))
        found = names_in(text, names)
        lowered = text.lower()
        assert {name for name in names if occurs(name, lowered)} == found, text


def _mention_rows(n, seed):
    rng = np.random.default_rng(seed)
    titles = [f"{WORDS[i % len(WORDS)]} {WORDS[(i * 7 + i // len(WORDS)) % len(WORDS)]} — Guide" for i in range(n)]
    rows = []
    for i in range(n):
        named = " ".join(titles[j].split(" — ")[0] for j in rng.choice(n, 3))
        rows.append((titles[i], "", f"{' '.join(rng.choice(WORDS, 30))} see {named}, and {rng.choice(WORDS)}"))
    return [f"docs/page_{i}" for i in range(n)], rows


def _full(index_ids, rows, frozen):
    return mention_matrix(index_ids, [r[0] for r in rows], [r[0] + " \n" + r[2] for r in rows], frozen)


@pytest.mark.parametrize("with_titles", [False, True])
def test_mentions_updated_from_the_names_found_last_time_equal_a_full_scan(tmp_path, monkeypatch, with_titles):
    """Without the previous titles every mention row is made from the names found; with them (what the batch
    passes) the rows that cannot have changed are copied from the last build's matrix (store.mentionreuse), and
    only the others are made: the same matrix either way."""
    import recommender.store.lexindex as lexindex
    import recommender.store.mentionreuse as mentionreuse

    ids, rows = _mention_rows(60, seed=1)
    old = LexicalIndex.build(ids, rows)
    old.save(tmp_path / "m.npz", tmp_path / "l.json")
    assert LexicalIndex.load(tmp_path / "m.npz", tmp_path / "l.json").found is None  # queries skip it
    old = LexicalIndex.load(tmp_path / "m.npz", tmp_path / "l.json", found=True)
    assert old.found is not None and old.found[1].nnz > 60
    scanned = []
    real_names_in = lexindex.names_in
    monkeypatch.setattr(lexindex, "names_in", lambda text, owners: scanned.append(text) or real_names_in(text, owners))
    new_ids, new_rows = list(ids), list(rows)
    new_rows[2] = (rows[2][0], "", rows[2][2] + " and also signal timer")  # text changed
    new_rows[5] = ("Cookie Jar", "", rows[5][2])  # renamed: its old names name nothing now, "cookie jar" is new
    new_rows[9] = (rows[9][0], "", rows[9][2] + " uses the JSON-decoder and a cookie jar")  # changed
    del new_ids[7], new_rows[7]  # removed
    new_ids.append("docs/json_decoder")  # added: "json decoder" is a new name, which unchanged texts may hold
    new_rows.append(("Sockets Hub", "", "about sockets"))
    new_ids.append("docs/extra")  # added: a second owner of "event signal", which kept texts name
    new_rows.append((rows[2][0], "", "signals and events"))
    rounds = [(new_ids, new_rows)]
    later = list(new_rows)
    later[0] = (later[0][0], "", later[0][2] + " mentions Cookie Jar")  # a second update, from the first's record
    rounds.append((new_ids, later))
    made = []  # the rows store.mentionreuse made rather than copied
    monkeypatch.setattr(mentionreuse, "BLOCK", 7)  # its work split in many blocks of rows
    real_csr = mentionreuse.mention_csr
    monkeypatch.setattr(mentionreuse, "mention_csr",
                        lambda found, *a, **k: made.append(k["selves"].tolist()) or real_csr(found, *a, **k))
    previous_rows, rows_by_id = rows, dict(zip(ids, rows))
    for count, (round_ids, round_rows) in enumerate(rounds):
        scanned.clear()
        made.clear()
        new, _ = old.updated(ids, round_ids, round_rows, [r[0] for r in previous_rows] if with_titles else None)
        if with_titles:  # made: the new and changed texts, those whose names found changed, those holding a
            # name whose owners changed ("event signal" gains one); copied: every other
            old_names = {x: {old.found[0][c] for c in old.found[1][p].indices} for p, x in enumerate(ids)}
            new_names = [{new.found[0][c] for c in new.found[1][r].indices} for r in range(len(round_ids))]
            old_owners, new_owners = ({name: [these[r] for r in rows_] for name, rows_ in
                                       lexindex.name_owners(these, [r[0] for r in texts]).items()}
                                      for these, texts in ((ids, previous_rows), (round_ids, round_rows)))
            changed = {x for x, r in zip(round_ids, round_rows) if x not in old_names or r != rows_by_id[x]}
            expected = {r for r, x in enumerate(round_ids) if x in changed or new_names[r] != old_names[x] or
                        any(old_owners.get(name) != new_owners[name] for name in new_names[r])}
            assert sorted(expected) == made[0] and 0 < len(expected) < len(round_ids)
            assert any(x not in changed and new_names[r] == old_names[x] for r, x in enumerate(round_ids)
                       if r in expected) == (count == 0)  # rows made only because an owner changed
        else:
            assert not made
        rows_by_id = dict(zip(round_ids, round_rows))
        # only new and changed documents were scanned word by word (2, 5, 9 and the two added; then 0)
        assert len(scanned) == (5 if count == 0 else 1)
        expected, names = _full(round_ids, round_rows, old.name_weights)
        assert expected.nnz > 100
        assert (new.mentions != expected).nnz == 0 and np.array_equal(new.mentions.data, expected.data)
        assert new.name_weights == names
        owners = lexindex.name_owners(round_ids, [r[0] for r in round_rows])
        names_list, found = found_arrays(owners, [real_names_in(r[0] + " \n" + r[2], owners)
                                                           for r in round_rows])
        assert new.found[0] == names_list and (new.found[1] != found).nnz == 0
        old, ids, previous_rows = new, list(round_ids), round_rows


def test_too_many_new_names_scan_every_text_and_still_equal_a_full_scan(monkeypatch):
    import recommender.store.lexindex as lexindex

    monkeypatch.setattr(lexindex, "NEW_NAMES_SEARCHED", 1)
    ids, rows = _mention_rows(40, seed=2)
    old = LexicalIndex.build(ids, rows)
    new_rows = list(rows)
    new_rows[3] = ("Thread Pool Process", "", rows[3][2])
    new_rows[4] = ("Decoder Encoder", "", rows[4][2])
    new, _ = old.updated(ids, ids, new_rows)
    expected, names = _full(ids, new_rows, old.name_weights)
    assert (new.mentions != expected).nnz == 0 and new.name_weights == names


def test_apostrophes_normalised_as_the_lookbehind_first_patterns_did():
    import re

    from recommender.store.lexical import normalise_apostrophes

    possessive = re.compile(r"(?<=\w)['’ʼ‘`]s\b")  # the patterns before they were reordered for speed
    inner = re.compile(r"(?<=\w)['’ʼ‘`](?=\w)")
    rng = np.random.default_rng(7)
    pieces = ["a", "s", "é", "_", "1", " ", "'", "’", "ʼ", "‘", "`", "s ", "\n", "-", "''", "x's", "’s’s"]
    texts = ["".join(rng.choice(pieces, rng.integers(0, 14))) for _ in range(3000)]
    texts += ["Python’s asyncio", "don’t", "we've", "the users' files", "O’Neil’s", "'s", "a`s`t"]
    changed = 0
    for text in texts:
        expected = inner.sub("", possessive.sub("", text))
        assert normalise_apostrophes(text) == expected, repr(text)
        changed += expected != text
    assert changed > 500


def test_update_renumbers_kept_names_and_finds_new_ones_in_kept_texts():
    """Kept texts keep their stored names (renumbered: a removed article's names drop out, a new one's sort in)
    and are searched for the new names; the found arrays, counts and mentions equal a full scan's."""
    from recommender.store.lexindex import name_owners, scan_names

    ids = ["p/asyncio", "p/socket", "p/streams", "p/queue", "p/thread"]
    titles = ["Asyncio", "Socket", "Streams", "Queue", "Thread"]
    bodies = ["asyncio uses a socket and streams; see the selector module",
              "socket basics; asyncio wraps the socket; the selector helps",
              "streams over a socket with a queue", "a queue between thread and asyncio", "thread and queue"]
    old = LexicalIndex.build(ids, [(t, "", b) for t, b in zip(titles, bodies)])
    # "streams" removed (its name no longer names anything), "selector" added (named by two kept texts)
    new_ids = ["p/asyncio", "p/socket", "p/queue", "p/thread", "p/selector"]
    new_titles = ["Asyncio", "Socket", "Queue", "Thread", "Selector"]
    new_bodies = [bodies[0], bodies[1], bodies[3], "thread and queue and selector", "selector for asyncio sockets"]
    new_rows = [(t, "", b) for t, b in zip(new_titles, new_bodies)]
    new, transformed = old.updated(ids, new_ids, new_rows, titles)
    assert transformed == 2  # the changed thread page and the new one
    documents = [t + " \n" + b for t, b in zip(new_titles, new_bodies)]
    (names, full), df = scan_names(documents, name_owners(new_ids, new_titles))
    assert new.found[0] == names and (new.found[1] != full).nnz == 0
    assert np.array_equal(new.found[1].indices, full.indices) and np.array_equal(new.found[1].indptr, full.indptr)
    expected, weights = mention_matrix(new_ids, new_titles, documents, old.name_weights)
    assert (new.mentions != expected).nnz == 0 and new.name_weights == weights
    assert new.mentions[0, 4] > 0 and new.mentions[1, 4] > 0  # kept texts now name the new page
    assert "streams" not in [names[j] for j in new.found[1].indices]
    assert df["selector"] == 4


def test_mention_rows_reused_only_while_the_articles_keep_their_order():
    """Copied rows keep their columns' order only when the surviving articles keep theirs: a reordered corpus
    makes M in full (store.mentionreuse returns None), and the matrix still equals a full scan's."""
    from recommender.store.mentionreuse import reused_mentions

    ids, rows = _mention_rows(30, seed=3)
    old = LexicalIndex.build(ids, rows)
    order = list(range(30))
    order[4], order[20] = order[20], order[4]
    new_ids, new_rows = [ids[i] for i in order], [rows[i] for i in order]
    new, _ = old.updated(ids, new_ids, new_rows, [r[0] for r in rows])
    expected, _ = _full(new_ids, new_rows, old.name_weights)
    assert (new.mentions != expected).nnz == 0 and np.array_equal(new.mentions.data, expected.data)
    assert reused_mentions(old.mentions, old.found, ids, [r[0] for r in rows], old.name_weights, new_ids,
                           [r[0] for r in new_rows], {}, new.found, {}, {}) is None
