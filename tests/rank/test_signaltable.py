"""The ranking signals are one table (rank/signaltable.py): the learned columns, the fixed score's parts, the
nightly reach's pair-by-pair scores and the protocols read it, so a new signal is a function and one entry
(docs/design.md, "Adding a ranking signal", whose worked example the last test applies and runs)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from scipy import sparse

import recommender
from recommender.batch.incremental import ROW_PARTS
from recommender.batch.learned_pairs import PairView, voter_strength
from recommender.batch.learned_reach import RECORDED
from recommender.evaluate.protocols import SELF_NAMING
from recommender.rank.graph_signals import LinkGraphs
from recommender.rank.policy import Ranking
from recommender.rank.signals import ArticleFeatures
from recommender.rank.signaltable import (ALL_SIGNALS, GRAPH, REACH, SCORE, SITE, TABLE, WEIGHTED_PARTS,
                                          graph_columns, pair_columns, pair_signals)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = np.array([[1, 0, 0], [0.8, 0.6, 0], [0, 1, 0], [0, 0.6, 0.8]], dtype=np.float32)
MENTIONS = sparse.csr_matrix(np.array([[0, 2, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0.5, 0, 0]], np.float32))
LISTS = {0: [1, 2], 1: [0], 3: [2]}
# the names and order learned-ranker.json stores: a model file of this format reads its columns by them
STORED = ["dense_z", "lexical_z", "mention_z", "title_overlap", "tag_overlap", "same_author", "date_gap",
          "dates_known", "candidate_older", "same_source", "path_proximity", "path_parent", "same_page_type",
          "window_z", "window_max_z", "names_out", "names_in", "named_by", "dense_rz", "curated_in", "curated_back",
          "co_curated", "neighbour_lists"]


def info(title, topics=(), authors=(), published=None, source=None, url=None, page_type=None):
    return SimpleNamespace(id=url or title, title=title, topics=topics, authors=authors, published=published,
                           source=source, url=url, page_type=page_type)


def site() -> tuple[ArticleFeatures, LinkGraphs]:
    facts = ArticleFeatures.from_infos([
        info("Cats and dogs", ("pets", "animals"), ("Ann",), "2024-01-11", "S", "https://x.org/pets/cats/", "guide"),
        info("Dogs at home", ("pets",), ("ann",), "2024-01-01", "s", "https://x.org/pets/cats/dogs", "guide"),
        info("Taxes", ("money",), ("Bo",), None, url="https://x.org/money"),
        info("Cats", ("pets", "animals"), (), "2024-02-10", url="https://x.org/pets/"),
    ])
    return facts, LinkGraphs.build(VECTORS, SimpleNamespace(count=4, mentions=MENTIONS), LISTS)


def test_the_table_is_what_each_reader_reads():
    example = ["shorter_title"] if os.environ.get("SIGNAL_EXAMPLE") else []  # the worked example's, run below
    assert list(ALL_SIGNALS) == STORED[:15] + example + STORED[15:]
    assert len({s.name for s in TABLE}) == len(TABLE) and all(s.reach in REACH for s in TABLE)
    assert all((s.source == SCORE) == (s.part is not None) and (s.column is None) == (s.source == SCORE)
               for s in TABLE)
    assert set(WEIGHTED_PARTS) == set(Ranking().weights()) == {"dense", "window", "lexical", "mention"}
    assert SELF_NAMING == ("curated_back", "co_curated")
    # a z-score over the query's row needs that row's statistics frozen by the nightly batch
    assert {s.part for s in TABLE if s.reach == "row"} <= set(ROW_PARTS)


def test_each_signal_is_the_same_for_a_query_and_pair_by_pair():
    """The nightly reach computes every signal pair by pair (pair_columns, float64); a query computes them on its
    candidates (pair_signals, graph_columns, float32): the same values, signal by signal, for every query."""
    facts, graph = site()
    rng = np.random.default_rng(5)
    seen = np.zeros(len(ALL_SIGNALS), dtype=bool)
    for q in range(4):
        rows = np.array([r for r in range(4) if r != q])
        z = {part: rng.uniform(-1, 2, size=3).astype(np.float32) for part in ("dense", "lexical", "mention", "window",
                                                                      "window_max")}
        cosine = VECTORS[rows] @ VECTORS[q]
        X = np.hstack([pair_signals(q, rows, z, facts), graph_columns(graph, q, rows, z, cosine)])
        strength = voter_strength(z, len(rows))
        top = np.argsort(-strength, kind="stable")
        voters, values = np.full((3, RECORDED), -1), np.full((3, RECORDED), np.nan)
        voters[:, :3], values[:, :3] = rows[top], strength[top]
        qs = np.full(3, q)
        columns = pair_columns(lambda part: z.get(part, 0.0), facts, graph,
                               PairView(graph, qs, rows, cosine, voters, values), qs, rows)
        assert len(columns) == X.shape[1]
        for name, column, pairwise in zip(ALL_SIGNALS, X.T, columns):
            assert np.allclose(column, np.broadcast_to(pairwise, column.shape), atol=1e-6), (q, name)
        seen |= X.any(axis=0)
    assert seen.all(), [name for name, s in zip(ALL_SIGNALS, seen) if not s]  # every signal tried on a value


def test_the_docs_worked_example_adds_a_signal_with_a_function_and_one_entry(tmp_path):
    """docs/design.md's example, applied to a copy of the package: the new signal is a learned column, its values
    are right, and the table's checks above pass with it (for a query and pair by pair)."""
    doc = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    section = doc[doc.index("### Adding a ranking signal"):doc.index("### Adding an output format")]
    function, entry = re.findall(r"```python\n(.*?)```", section, re.S)
    package = tmp_path / "recommender"
    shutil.copytree(Path(recommender.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    signals = package / "rank" / "signals.py"
    signals.write_text(signals.read_text(encoding="utf-8") + "\n\n" + function, encoding="utf-8")
    table = package / "rank" / "signaltable.py"
    text = table.read_text(encoding="utf-8")
    end = text.index("\n)\n", text.index("TABLE = ("))  # the entry goes at the end of TABLE
    table.write_text(text[:end] + "\n" + entry.rstrip("\n") + text[end:], encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).parent)]),
           "SIGNAL_EXAMPLE": "1"}
    check = ("import numpy as np, recommender; from recommender.rank import signaltable as t; "
             "from test_signaltable import site; facts, _ = site(); "
             "X = t.pair_signals(1, np.array([0, 2, 3]), {'dense': np.zeros(3, np.float32)}, facts); "
             "print(recommender.__file__, t.ALL_SIGNALS.index('shorter_title'), "
             "X[:, t.SIGNALS.index('shorter_title')].tolist())")
    out = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, check=True,
                         cwd=tmp_path)  # not the checkout, whose package would come first
    where, column, values = out.stdout.split(" ", 2)
    assert where.startswith(str(tmp_path)) and column == "15"  # after the other site and score signals
    assert values.strip() == "[0.0, 1.0, 1.0]"  # titles of 2 words against 3, 1 and 1
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
                          "table_is_what or same_for_a_query"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0 and "2 passed" in run.stdout, run.stdout[-2000:]


def test_title_overlap_is_the_same_through_the_compiled_rows_loop(hashing_index, monkeypatch):
    """The shared title words, from a sparse product or from the compiled rows loop (store.compiledscores._row_dots,
    which the batch and the service run): the same float32 numbers, in memory and from an index's mapped arrays."""
    import pytest

    from recommender.rank.index import Index
    from recommender.rank.signals import title_overlap
    from recommender.store import compiledtopk

    kernel = compiledtopk._kernel("row_dots")
    if kernel is None:
        pytest.skip("numba cannot build the loop here")
    with Index.open(hashing_index) as index:
        for facts in (site()[0], index.data.article_features()):
            n = facts.title_len.shape[0]
            ways = []
            for loop in (None, kernel):
                monkeypatch.setitem(compiledtopk.ACTIVE, "row_dots", loop)
                ways.append([title_overlap(facts, q, np.array([r for r in range(n) if r != q][::-1]))
                             for q in range(n)])
            assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(*ways))
            assert sum(int((a > 0).sum()) for a in ways[0]) >= 2  # titles that share words


def random_site(n: int = 90, seed: int = 3):
    """A site of n articles with titles, tags, authors, dates (some missing), nested URL paths, page types, text
    mentions and curated lists, drawn at random."""
    rng = np.random.default_rng(seed)
    words = ["cats", "dogs", "taxes", "home", "garden", "river", "stone", "light", "music", "train", "paper"]
    infos = []
    for i in range(n):
        path = "/".join(rng.choice(["pets", "money", "home", "news", "a", "b"], size=int(rng.integers(0, 4))))
        title = " ".join(rng.choice(words, size=int(rng.integers(0, 5))))
        tags = tuple(rng.choice(["t1", "t2", "t3", "t4", "t5"], size=int(rng.integers(0, 3)), replace=False))
        authors = tuple(rng.choice(["ann", "bo", "cy"], size=int(rng.integers(0, 2))))
        day = None if rng.random() < 0.2 else f"2024-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
        source = str(rng.choice(["S", "T"])) if rng.random() < 0.7 else None
        url = f"https://x.org/{path}/" + (f"p{i}" if rng.random() < 0.7 else "")  # some a parent of others
        page_type = str(rng.choice(["guide", "ref"])) if rng.random() < 0.8 else None
        infos.append(info(title, tags, authors, day, source, url, page_type))
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    mentions = sparse.random(n, n, density=0.05, format="csr", dtype=np.float32, random_state=seed)
    lists = {int(q): [int(r) for r in rng.choice(n, size=4, replace=False) if r != q]
             for q in rng.choice(n, size=n // 2, replace=False)}
    return (ArticleFeatures.from_infos(infos), LinkGraphs.build(vectors, SimpleNamespace(count=n, mentions=mentions),
                                                                 lists), vectors, rng)


def test_a_block_of_queries_gets_each_querys_signals_and_scores_bit_for_bit(monkeypatch):
    """The batch computes the signals of a block of queries at once (block_signals, learned.rescore_many): the same
    float32 values as each query's own (pair_signals and graph_columns), with the compiled loops and without."""
    from recommender.rank.learned import LearnedModel, rescore, rescore_many
    from recommender.rank.ranking import Candidates
    from recommender.rank.signaltable import block_signals
    from recommender.store import compiledtopk

    facts, graph, vectors, rng = random_site()
    n = len(vectors)
    parts = ("dense", "lexical", "mention", "window", "window_max")
    cands = []
    for k, q in enumerate(rng.permutation(n)[:40].tolist()):  # the second query: no candidates
        rows = np.sort(rng.choice([r for r in range(n) if r != q], size=int(rng.integers(1, 60)) if k != 1 else 0,
                                  replace=False))
        z = {part: rng.normal(size=len(rows)).astype(np.float32) for part in parts}
        cands.append(Candidates(q, rows, z["dense"], {"dense": vectors[rows] @ vectors[q]}, z))
    width = len(ALL_SIGNALS)
    model = LearnedModel(list(ALL_SIGNALS), rng.normal(size=width).tolist(), rng.uniform(0.5, 2, size=width).tolist(),
                         rng.normal(size=width).tolist(), 0.1)
    kernels = {name: compiledtopk._kernel(name) for name in ("row_dots", "pair_values")}
    for compiled in (False, True) if None not in kernels.values() else (False,):  # without numba: NumPy's alone
        for name, kernel in kernels.items():
            monkeypatch.setitem(compiledtopk.ACTIVE, name, kernel if compiled else None)
        one = [np.hstack([pair_signals(c.query, c.rows, c.z, facts),
                          graph_columns(graph, c.query, c.rows, c.z, c.raw["dense"])]) for c in cands]
        block = block_signals(cands, facts, graph)
        assert block.dtype == np.float32 and np.array_equal(block, np.vstack(one)), compiled
        assert block.any(axis=0).all(), [s for s, x in zip(ALL_SIGNALS, block.any(axis=0)) if not x]
        each = [rescore(c, facts, model, graph) for c in cands]
        many = rescore_many(cands, facts, model, graph)
        assert all(np.array_equal(a.rows, b.rows) and np.array_equal(a.score, b.score)
                   and np.array_equal(a.signals, b.signals) for a, b in zip(each, many))
