import logging
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
DEMO = ROOT / "demo"

# Tests never reach a model hub, whatever the machine has configured.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

@pytest.fixture(autouse=True)
def _restore_recommender_logger():
    """A CLI test configures the "recommender" logger (its own stderr handler, no propagation); put it back so a
    later test's caplog still sees log lines, whatever order the tests run in."""
    logger = logging.getLogger("recommender")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture
def corpus_dir() -> Path:
    return FIXTURES / "corpus"


@pytest.fixture
def bad_dir() -> Path:
    return FIXTURES / "bad"


# every kind of target, and no reverse rule (the hashing embedder's vectors are noise: no article's view of another)
EVERY_TARGET = '[links]\ntargets = ["site", "other-domains", "no-url", "stubs"]\nmin_reverse = -1000\n'
LEXICAL_POLICY = "[ranking]\ndense = 0\nwindow = 0\nlexical = 1\nmention = 0\n" + EVERY_TARGET


@pytest.fixture
def lexical_policy(tmp_path) -> Path:
    """A policy ranking by TF-IDF alone. The fixture corpus is 11 short, mostly unrelated articles and the hashing
    embedder's vectors are noise, so under the default weights most lists hold one link or none above the
    minimum score; tests that need several links (pins, tables, the editors' page) rank it by words, and link
    every kind of article (its curated lists name curated stubs and plain-text files, which the default
    [links] targets leave out)."""
    path = tmp_path / "recommender.toml"
    path.write_text(LEXICAL_POLICY)
    return path


@pytest.fixture(scope="session")
def hashing_index(tmp_path_factory):
    """An index of the fixture corpus built with the fast hashing embedder (no torch)."""
    from recommender import build_index

    folder = tmp_path_factory.mktemp("hash-index")
    build_index(FIXTURES / "corpus", folder, model="hashing", progress=False)
    return folder


@pytest.fixture
def index_copy(hashing_index, tmp_path):
    """A copy of the hashing index that a test may write to (pins, blocks, a new version)."""
    folder = tmp_path / "idx"
    shutil.copytree(hashing_index, folder)
    return folder
