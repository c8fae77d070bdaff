"""What the last nightly run left, and whether this run can reuse it: a digest of everything the related links
depend on (`links_key`, kept in the run record), the last successful run, and whether its outputs are all in place.
When the digest is unchanged and the outputs exist, the batch keeps them instead of ranking every list again."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..rank.index import Index
    from ..rank.policy import Policy


def links_key(index: Index, policy: Policy, overrides, as_of: datetime | None,
              gold_path: str | Path | None = None) -> str:
    """A digest of everything the related links (and the run's evaluation) depend on: the index version (its
    manifest's checksums), the policy, the overrides, the gold file, the day when an age or recency rule
    makes the links depend on the date, and this package's code (after an upgrade the lists are ranked again,
    and stored for queries)."""
    import hashlib
    import json

    from ..common.source import code_digest

    day = None
    if policy.links.max_age_days is not None or policy.recency.half_life_days > 0:
        day = (as_of or datetime.now(timezone.utc)).date().isoformat()
    blob = json.dumps({"files": {k: e.sha256 for k, e in index.data.manifest.files.items()},
                       "policy": policy.to_dict(), "overrides": [o.to_dict() for o in overrides.items],
                       "day": day, "gold": gold_stamp(gold_path), "code": code_digest()},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def gold_stamp(gold_path: str | Path | None) -> list | None:
    if not gold_path:
        return None
    stat = Path(gold_path).stat()
    return [str(Path(gold_path).resolve()), stat.st_size, stat.st_mtime_ns]


def last_ok_run(out_dir: Path) -> dict | None:
    from .outputs import read_runs

    try:
        runs = [r for r in read_runs(out_dir) if r.get("status") == "ok"]
    except Exception:  # noqa: BLE001 - an unreadable run log only means nothing can be reused
        return None
    return runs[-1] if runs else None


def outputs_exist(out_dir: Path) -> bool:
    from .outputs import output_names

    return all((out_dir / name).exists() for name in output_names())
