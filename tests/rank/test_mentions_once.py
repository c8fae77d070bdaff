"""The mention graph is stored once per index version (issue 25, at 1M articles about 24 GB of 36 GB before): M in
the lexical file, Mᵀ in the query data; neither the query data's M + Mᵀ nor the learned arrays' own M / Mᵀ is
written. An index written before, with M + Mᵀ in its query data and M / Mᵀ in its learned arrays, still opens
and answers the same lists with the same scores, under the default and the learned ranking."""

import numpy as np

from recommender import Index
from recommender.rank.learneddata import PREFIX as LEARNED
from recommender.rank.policy import policy_from_dict
from recommender.rank.querydata import PREFIX as QUERY
from recommender.store.manifest import read_manifest, write_manifest

from test_learned_query import ON, trained

OFF = policy_from_dict({"ranking": {"learned": "off"}})  # the default ranking, a learned model stored or not
NAMED = policy_from_dict({"ranking": {"learned": "off", "mention": 1.0}})  # the mentions weigh as much as the rest


def naming(lines):
    """Articles naming others by their titles, some twice, some pairs both ways."""
    count = len(lines)
    for i, line in enumerate(lines):
        named = [(i + 1) % count, (i + 7) % count, (3 * i + 2) % count][: 1 + i % 3]
        line["text"] += " " + " ".join(f"as told in {lines[j]['title']}" * (1 + (i + j) % 2) for j in named)


def answers(folder, policy):
    """Every article's computed list: (ids, scores, the mention part) in order."""
    out = {}
    with Index.open(folder) as index:
        for article_id in index.data.store.ids():
            found, how = index.related_answer(article_id, policy=policy, stored=False)
            assert how == "computed"
            out[article_id] = [(r.id, r.score, r.parts.get("mention")) for r in found]
    return out


def test_a_new_index_stores_the_mentions_once_and_an_old_index_answers_the_same(tmp_path):
    from recommender.store.lexindex import LexicalIndex
    from recommender.store.mentionmatrix import transpose
    from recommender.store.npyfiles import write_npy_files

    trained(tmp_path, naming=naming)
    folder = tmp_path / "idx"
    manifest = read_manifest(folder)
    roles = set(manifest.files)
    for part in ("data", "indices", "indptr"):  # Mᵀ once, in the query data; no M + Mᵀ, no second M or Mᵀ
        assert f"{QUERY}mentions_t_{part}" in roles
        assert not {f"{QUERY}mentions_{part}", f"{LEARNED}mentions_{part}", f"{LEARNED}mentions_t_{part}"} & roles
    assert not list(folder.glob("*-mentions_data.npy")) and len(list(folder.glob("*mentions_t_data.npy"))) == 1
    files = {role: folder / manifest.files[role].name for role in ("lexical", "lexicon")}
    mentions = LexicalIndex.load(files["lexical"], files["lexicon"]).mentions
    turned = transpose(mentions)
    for part in ("data", "indices", "indptr"):  # the query data's Mᵀ: the transpose of the lexical file's M
        stored = np.load(folder / manifest.files[f"{QUERY}mentions_t_{part}"].name)
        assert stored.dtype == getattr(turned, part).dtype and np.array_equal(stored, getattr(turned, part))
    assert mentions.nnz and (mentions != mentions.T).nnz  # a mention graph that is not symmetric
    new = {name: answers(folder, policy) for name, policy in (("default", OFF), ("named", NAMED), ("learned", ON))}
    m = mentions
    assert len(np.unique(m.data)) > 1 and m.multiply(m.T).nnz  # weights vary
    assert sum(p["value"] > 0 for lists in new["named"].values() for _, _, p in lists) >= 3  # in some lists

    # the index as the code before wrote it: M + Mᵀ in the query data, M and Mᵀ again in the learned arrays
    whole = (mentions + mentions.T.tocsr()).tocsr()
    whole.sort_indices()
    for part in ("data", "indices", "indptr"):
        (folder / manifest.files.pop(f"{QUERY}mentions_t_{part}").name).unlink()
    manifest.files.update(write_npy_files(folder, "query-old", QUERY, {
        f"mentions_{part}": getattr(whole, part) for part in ("data", "indices", "indptr")}))
    manifest.files.update(write_npy_files(folder, "learned-old", LEARNED, {
        f"{name}_{part}": getattr(matrix, part) for name, matrix in (("mentions", mentions), ("mentions_t", turned))
        for part in ("data", "indices", "indptr")}))
    write_manifest(folder, manifest)
    with Index.open(folder) as index:
        assert type(index.data.query_data.both_ways()).__name__ == "Summed"
        assert index.data.learned_files.names["mentions_t_data"] == "learned-old-mentions_t_data.npy"
    for name, policy in (("default", OFF), ("named", NAMED), ("learned", ON)):
        assert answers(folder, policy) == new[name], name
