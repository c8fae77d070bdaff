"""`serve --workers N`: the workers share the machine's cores between their math libraries."""

import os

from recommender.serve import workers


def test_workers_divide_the_cores_unless_the_environment_says(monkeypatch):
    for name in workers.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")  # set by the operator: kept
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    workers.share_cores(4)
    assert os.environ["OMP_NUM_THREADS"] == "2" and os.environ["MKL_NUM_THREADS"] == "2"
    assert os.environ["OPENBLAS_NUM_THREADS"] == "3"
    monkeypatch.delenv("OMP_NUM_THREADS")
    workers.share_cores(16)
    assert os.environ["OMP_NUM_THREADS"] == "1"
