"""`recommender serve --workers N`: N server processes on one port (uvicorn's workers: the listening socket is
opened once and shared, the kernel hands each connection to one process, and a worker that dies is replaced).

Each worker makes its own app from the settings the parent passes in the environment, opens the index itself and
follows it on its own (serve/versions.py): after a new version is committed each process swaps on its own, each
atomically (a request sees one version), and for a moment two processes may answer from two versions. The
overrides live in the index folder, so a pin made through one worker is live in all of them at their next request.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import fields
from pathlib import Path

log = logging.getLogger("recommender")
SETTINGS_ENV = "RECOMMENDER_SERVE_SETTINGS"


def policy_to_json(policy) -> dict | None:
    if policy is None:
        return None
    return {"source": policy.source, "sections": policy.to_dict()}


def policy_from_json(data: dict | None):
    """The policy again, field by field (it was checked when it was read; None values stay None)."""
    if data is None:
        return None
    from ..rank.policy import SECTIONS, Policy

    parts = {}
    for name, values in data["sections"].items():
        cls = SECTIONS[name]
        kinds = {f.name for f in fields(cls)}
        parts[name] = cls(**{key: tuple(value) if isinstance(value, list) else value
                             for key, value in values.items() if key in kinds})
    return Policy(**parts, source=data["source"])


def settings_from_environment() -> dict:
    """create_app's arguments, as the parent passed them (read by app.app_from_environment in each worker)."""
    settings = json.loads(os.environ[SETTINGS_ENV])
    return {**settings, "policy": policy_from_json(settings["policy"])}


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def share_cores(workers: int) -> None:
    """Each worker's math libraries (BLAS, FAISS's OpenMP) get the machine's cores divided among the workers,
    unless the environment already says: N workers each starting as many threads as there are cores would fight
    over them, and a computed answer would wait for threads of the other workers. Workers inherit the variables
    (they are new interpreters, spawned after this)."""
    threads = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, threads)


def run_workers(folder: str | Path, *, host: str, port: int, editor: bool, token: str | None, policy,
                workers: int) -> None:
    import uvicorn

    from .fastpath import StoredAnswersProtocol
    from .versions import open_version

    open_version(Path(folder)).index.close()  # a broken index fails here, once, not in every worker
    share_cores(workers)
    os.environ[SETTINGS_ENV] = json.dumps({"folder": str(Path(folder).resolve()), "editor": editor, "token": token,
                                           "policy": policy_to_json(policy)})
    uvicorn.run("recommender.serve.app:app_from_environment", factory=True, workers=workers, host=host,
                port=port, log_level="warning", http=StoredAnswersProtocol)
