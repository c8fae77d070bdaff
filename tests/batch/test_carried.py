"""A new index version takes unchanged content's vectors and window codes from the version it replaces
(embed.carried): the same files as a build from nothing, and the cache read only for the rest."""

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from recommender import build_index
from recommender.embed.vector_cache import VectorCache

ROLES = ("query:vectors", "windows:codes", "windows:scales", "windows:offsets")


def arrays(folder: Path) -> dict[str, np.ndarray]:
    files = json.loads((folder / "manifest.json").read_text())["files"]
    return {role: np.load(folder / files[role]["name"], allow_pickle=False) for role in ROLES}


def edited(corpus_dir: Path, target: Path) -> Path:
    shutil.copytree(corpus_dir, target)
    (target / "text" / "marathon.txt").write_text("Training for a first marathon\nRun slowly and often, and rest.\n")
    (target / "text" / "extra.txt").write_text("Allotment notes\n\nBroad beans went in early this year. " * 40 + "\n")
    (target / "blog" / "sourdough.md").unlink()
    return target


def spy_windows(monkeypatch) -> list[str]:
    asked: list[str] = []
    original = VectorCache.get_windows

    def get_windows(self, model, hashes):
        hashes = list(hashes)
        asked.extend(hashes)
        return original(self, model, hashes)

    monkeypatch.setattr(VectorCache, "get_windows", get_windows)
    return asked


def test_a_new_version_carries_unchanged_vectors_and_codes_and_equals_a_fresh_build(tmp_path, corpus_dir,
                                                                                     monkeypatch):
    build_index(corpus_dir, tmp_path / "idx", model="hashing", progress=False)
    corpus = edited(corpus_dir, tmp_path / "c")
    asked = spy_windows(monkeypatch)
    report = build_index(corpus, tmp_path / "idx", model="hashing", progress=False)
    assert report.rewritten and report.vectors.embedded == 2
    # only the new and changed content was looked up in the cache; the rest came from the replaced version
    assert 0 < len(asked) <= 2 < report.count
    build_index(corpus, tmp_path / "fresh", model="hashing", progress=False)
    got, want = arrays(tmp_path / "idx"), arrays(tmp_path / "fresh")
    for role in ROLES:
        assert got[role].dtype == want[role].dtype and np.array_equal(got[role], want[role]), role
    assert np.array_equal(report.matrix, want["query:vectors"])


def test_a_damaged_replaced_version_is_not_carried(tmp_path, corpus_dir, monkeypatch, caplog):
    build_index(corpus_dir, tmp_path / "idx", model="hashing", progress=False)
    files = json.loads((tmp_path / "idx" / "manifest.json").read_text())["files"]
    codes = tmp_path / "idx" / files["windows:codes"]["name"]
    data = bytearray(codes.read_bytes())
    data[-1] ^= 0x55
    codes.write_bytes(bytes(data))
    os.utime(codes, ns=(0, 1))  # the stat no longer matches: the checksum is taken, and fails
    corpus = edited(corpus_dir, tmp_path / "c")
    asked = spy_windows(monkeypatch)
    with caplog.at_level(logging.WARNING):
        report = build_index(corpus, tmp_path / "idx", model="hashing", progress=False)
    assert "not reused" in caplog.text and "does not match its checksum" in caplog.text
    assert len(asked) == report.count  # every article's windows read from the cache instead
    build_index(corpus, tmp_path / "fresh", model="hashing", progress=False)
    got, want = arrays(tmp_path / "idx"), arrays(tmp_path / "fresh")
    for role in ROLES:
        assert np.array_equal(got[role], want[role]), role
