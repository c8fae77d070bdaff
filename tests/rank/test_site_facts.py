"""The stored site facts (signals.ArticleFeatures) are the same in every process."""

import os
import subprocess
import sys
from pathlib import Path

import recommender


_FEATURES_DIGEST = """
import hashlib, sys
from types import SimpleNamespace
from recommender.rank.signals import ArticleFeatures
infos = [SimpleNamespace(id=f"a{i}", url=f"https://site.example/{sec}/{sub}/page-{i}", title=title, topics=tags,
                         authors=authors, source="s", published=None, page_type=None)
         for i, (sec, sub, title, tags, authors) in enumerate([
             ("guides", "css", "Grid layout basics and beyond", ["css", "layout", "grid"], ["Ann", "Bo"]),
             ("guides", "js", "Promises chained with async", ["js", "async", "layout"], ["Bo", "Cy"]),
             ("reference", "css", "Flexbox alignment keywords", ["css", "flex", "alignment"], ["Di"]),
             ("reference", "js", "Async iterators and generators", ["async", "js", "generators"], ["Cy", "Ann"])])]
f = ArticleFeatures.from_infos(infos)
h = hashlib.sha256()
for a in (f.path_prefix, f.tag_idf, f.tags.indices, f.titles.indices, f.authors.indices):
    h.update(memoryview(a).tobytes())
print(h.hexdigest())
"""


def test_site_features_are_the_same_under_any_string_hash_seed():
    """The stored site facts (URL-path prefixes, tag/title/author matrices) must not depend on Python's per-process
    string hashing: otherwise two builds of one corpus write different index files."""
    digests = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", _FEATURES_DIGEST], env=env, capture_output=True, text=True,
                             check=True, cwd=str(Path(recommender.__file__).parent.parent))
        digests.add(out.stdout.strip())
    assert len(digests) == 1, digests
