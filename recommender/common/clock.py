"""Timestamps as the manifests, run records and overrides write them."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> str:
    """The current UTC time as an ISO string with seconds and a Z (manifests and run records)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
