import numpy as np

from recommender.ingest.article import Article
from recommender.embed.prepare import Preparation, combine, head_text, prepare, split_windows, spread


def test_windows_cover_every_word_with_overlap():
    words = [str(i) for i in range(1000)]
    spans = split_windows(words, 150, 120)
    assert spans[0] == (0, 150) and spans[-1][1] == 1000
    assert all(b - a <= 150 for a, b in spans)
    assert all(spans[i + 1][0] < spans[i][1] for i in range(len(spans) - 1))  # overlapping


def test_spread_keeps_first_and_last():
    assert spread(list(range(20)), 4) == [0, 6, 13, 19]
    assert spread([1, 2], 8) == [1, 2]


def test_long_body_is_chunked_not_truncated():
    body = " ".join(f"w{i}" for i in range(3000))
    prepared = prepare(Article(id="a", title="T", body=body), Preparation(max_chunks=8))
    assert len(prepared.chunks) == 8
    assert "w0" in prepared.chunks[0].split() and "w2999" in prepared.chunks[-1].split()
    assert all(c.startswith("T: ") for c in prepared.chunks)
    assert all(len(c.split()) <= 151 for c in prepared.chunks)


def test_news_item_is_head_only():
    prepared = prepare(Article(id="n", title="Title", excerpt="Excerpt here."))
    assert prepared.texts == ["Title. Excerpt here."]
    assert head_text(Article(id="n", title="Why?", excerpt="Because.")) == "Why? Because."


def test_hash_changes_with_text_and_settings():
    art = Article(id="a", title="T", body="some body words")
    p1, p2 = Preparation(), Preparation(head_weight=0.5)
    h = prepare(art, p1).content_hash(p1)
    assert h == prepare(Article(id="other-id", title="T", body="some body words"), p1).content_hash(p1)
    assert h != prepare(art, p2).content_hash(p2)
    assert h != prepare(Article(id="a", title="T", body="other body"), p1).content_hash(p1)
    assert p1.key != p2.key


def test_combine_mixes_head_and_body_mean():
    head = np.array([1.0, 0.0], dtype=np.float32)
    chunks = np.array([[0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    vec = combine(head, chunks, Preparation(head_weight=0.5))
    assert np.allclose(vec, [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-6)
    assert np.allclose(combine(head, chunks[:0]), head)


def test_every_window_is_kept_and_the_article_vector_reads_the_spread_ones():
    body = " ".join(f"w{i}" for i in range(3000))
    prepared = prepare(Article(id="a", title="T", body=body), Preparation(max_chunks=8))
    spans = split_windows(body.split(), 150, 120)
    assert len(prepared.windows) == len(spans) == 25 and len(prepared.picked) == 8
    assert prepared.chunks == tuple(prepared.windows[i] for i in spread(list(range(25)), 8))
    assert prepared.all_texts == [prepared.head, *prepared.windows]
    # a change in a window the article vector does not read still changes the content hash
    unread = next(i for i in range(25) if i not in prepared.picked)
    words = body.split()
    words[spans[unread][0] + 75] = "changed"
    other = prepare(Article(id="a", title="T", body=" ".join(words)), Preparation(max_chunks=8))
    assert other.chunks == prepared.chunks
    assert other.content_hash(Preparation()) != prepared.content_hash(Preparation())


def test_vectorize_stores_every_window_and_reuses_them_from_the_cache(tmp_path):
    from recommender.embed.embedder import get_embedder
    from recommender.embed.vector_cache import VectorCache
    from recommender.embed.vectorize import vectorize

    embedder = get_embedder("hashing")
    articles = [Article(id="long", title="Long", body=" ".join(f"w{i}" for i in range(2000))),
                Article(id="news", title="News", excerpt="Only a head.")]
    with VectorCache(tmp_path / "cache.sqlite") as cache:
        out = []
        vectors, _, stats = vectorize(articles, embedder, cache=cache, progress=False, windows=out)
        windows = out[0]
        prepared = prepare(articles[0])
        assert list(np.diff(windows.offsets)) == [1 + len(prepared.windows), 1]
        assert stats.texts == len(prepared.windows) + 2 and windows.vectors.dtype == np.float16
        own = embedder.encode(prepared.all_texts)
        np.testing.assert_allclose(windows.vectors[:len(own)].astype(np.float32), own, atol=1e-3)
        picked = 1 + np.array(prepared.picked)
        np.testing.assert_allclose(vectors[0], combine(own[0], own[picked]), atol=1e-6)
        again = []
        vectors2, _, stats2 = vectorize(articles, embedder, cache=cache, progress=False, windows=again)
        assert stats2.reused == 2 and stats2.embedded == 0
        assert np.array_equal(vectors2, vectors) and np.array_equal(again[0].vectors, windows.vectors)


def test_a_changed_article_embeds_only_the_texts_the_cache_lacks(tmp_path):
    """A paragraph added at the end of a long article: only its new last windows go through the model; the
    vectors are those of embedding it afresh."""
    from recommender.embed.embedder import get_embedder
    from recommender.embed.vector_cache import VectorCache
    from recommender.embed.vectorize import vectorize

    class Counting:
        def __init__(self, inner):
            self.inner, self.read = inner, []

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def encode(self, texts, batch_size=32, progress=False):
            self.read.extend(texts)
            return self.inner.encode(texts, batch_size=batch_size)

    body = " ".join(f"w{i}" for i in range(2000))
    before = [Article(id="long", title="Long", body=body), Article(id="news", title="News", excerpt="A head.")]
    after = [Article(id="long", title="Long", body=body + " an added closing paragraph"), before[1]]
    embedder = Counting(get_embedder("hashing"))
    with VectorCache(tmp_path / "cache.sqlite") as cache:
        vectorize(before, embedder, cache=cache, progress=False, windows=[])
        embedder.read.clear()
        out = []
        vectors, _, stats = vectorize(after, embedder, cache=cache, progress=False, windows=out)
    old, new = prepare(before[0]).all_texts, prepare(after[0]).all_texts
    assert embedder.read == [t for t in new if t not in old] and 0 < len(embedder.read) < len(new) / 4
    assert stats.embedded == 1 and stats.texts == len(embedder.read)
    afresh = []
    expected, _, _ = vectorize(after, embedder, cache=None, progress=False, windows=afresh)
    assert np.array_equal(vectors, expected) and np.array_equal(out[0].vectors, afresh[0].vectors)


def test_content_hashes_are_looked_up_by_what_the_preparation_reads(tmp_path, monkeypatch):
    """A second run prepares no unchanged article to hash it; any field prepare reads, or a setting, changes
    the key, so the hash is made again."""
    from recommender.embed import vectorize as vectorizing
    from recommender.embed.embedder import get_embedder
    from recommender.embed.vector_cache import VectorCache

    embedder = get_embedder("hashing")
    articles = [Article(id="a", title="A", excerpt="x", body="one two three " * 100), Article(id="b", title="B")]
    expected = vectorizing.content_hashes(articles, Preparation())
    with VectorCache(tmp_path / "cache.sqlite") as cache:
        _, hashes, _ = vectorizing.vectorize(articles, embedder, cache=cache, progress=False, windows=[])
        assert hashes == expected
        prepared = []
        monkeypatch.setattr(vectorizing, "prepare", lambda a, p: prepared.append(a.id) or prepare(a, p))
        _, again, _ = vectorizing.vectorize(articles, embedder, cache=cache, progress=False, windows=[])
        assert again == expected and prepared == []
        changed = [Article(id="a", title="A", excerpt="x", body="one two three " * 99), articles[1]]
        for other, settings in [(changed, Preparation()), (articles, Preparation(max_windows=3))]:
            hashes = vectorizing.cached_content_hashes(other, settings, cache)
            assert hashes == vectorizing.content_hashes(other, settings)
    keys = [vectorizing.source_keys([a], Preparation())[0] for a in
            (articles[0], Article(id="a2", title="A", excerpt="x", body=articles[0].body),
             Article(id="a", title="A", excerpt="", body="x" + articles[0].body),
             Article(id="a", title="Ax", excerpt="", body=articles[0].body))]
    assert len(set(keys)) == 4
