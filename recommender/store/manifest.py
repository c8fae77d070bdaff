"""The manifest of an index folder: which model and text preparation made the vectors, how many there are,
and the checksum of every file, so that a mismatched or corrupted index is refused with a clear message.

The manifest is the commit point of an index: data files are written under new names first, then the manifest
that names them replaces the old one atomically. A reader that follows the manifest sees one complete version.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..common.atomic import atomic_write_text, sha256_file

MANIFEST_NAME = "manifest.json"
LEARNED_MODEL_FILE = "learned-ranker.json"  # the learned ranking's model (rank/learned.py), role "learned_ranker"
FORMAT_VERSION = 1


class IndexProblem(RuntimeError):
    """An index folder that cannot be used: missing, corrupted, or built with other settings."""



@dataclass
class FileEntry:
    name: str
    sha256: str
    bytes: int
    mtime_ns: int | None = None  # when the checksum was taken; an unchanged stat skips re-hashing on open


@dataclass
class Manifest:
    model: dict  # {"name", "fingerprint", "dimension", "path"?}
    preparation: dict  # Preparation.to_dict()
    count: int
    dimension: int
    built_at: str
    backend: str = "faiss-flat-ip"
    files: dict[str, FileEntry] = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    format: int = FORMAT_VERSION

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> "Manifest":
        try:
            data = json.loads(text)
            files = {k: FileEntry(**v) for k, v in data.pop("files", {}).items()}
            if data.get("format") != FORMAT_VERSION:
                raise IndexProblem(
                    f"{where}: index format {data.get('format')!r}, this version reads format {FORMAT_VERSION}; "
                    "rebuild it with `recommender index`"
                )
            return cls(files=files, **data)
        except IndexProblem:
            raise
        except (ValueError, TypeError, AttributeError) as exc:
            raise IndexProblem(f"{where}: manifest is corrupted ({exc}); rebuild with `recommender index`") from None


def file_entry(path: Path) -> FileEntry:
    stat = path.stat()
    return FileEntry(name=path.name, sha256=sha256_file(path), bytes=stat.st_size, mtime_ns=stat.st_mtime_ns)


def write_manifest(folder: Path, manifest: Manifest) -> None:
    atomic_write_text(folder / MANIFEST_NAME, manifest.to_json())


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_NAME
    if not folder.exists():
        raise IndexProblem(f"{folder}: no index here; build one with `recommender index CORPUS --index {folder}`")
    if not path.exists():
        raise IndexProblem(f"{folder}: not an index (no {MANIFEST_NAME}); build one with `recommender index`")
    return Manifest.from_json(path.read_text(encoding="utf-8"), str(path))


def verify_files(folder: Path, manifest: Manifest, full: bool = False) -> None:
    """Raise IndexProblem unless every file the manifest names exists with its recorded size and checksum.

    A file whose size and modification time are still those recorded when its checksum was taken is trusted
    without re-hashing (a query then costs no full read of the index); any change of either, and `full=True`,
    re-hash it. Data files are never modified in place (new versions get new names), so a changed stat means
    damage or tampering."""
    for role, entry in manifest.files.items():
        path = folder / entry.name
        if not path.exists():
            raise IndexProblem(f"{path}: {role} file is missing; the index is incomplete, rebuild it")
        stat = path.stat()
        if not full and entry.mtime_ns is not None and (stat.st_size, stat.st_mtime_ns) == (entry.bytes,
                                                                                          entry.mtime_ns):
            continue
        if stat.st_size != entry.bytes or sha256_file(path) != entry.sha256:
            raise IndexProblem(f"{path}: {role} file does not match its checksum (corrupted or changed); rebuild")


def check_vectors(folder: Path, manifest: Manifest, shape: tuple, count: int) -> None:
    """Refuse vectors and articles whose counts or dimension differ from the manifest's."""
    if not (shape[0] == count == manifest.count) or shape[1] != manifest.dimension:
        raise IndexProblem(f"{folder}: index holds {shape[0]} vectors of dimension {shape[1]} and {count} "
                           f"articles, manifest says {manifest.count} x {manifest.dimension}; rebuild it")


def check_model(manifest: Manifest, embedder, folder: Path) -> None:
    """Refuse an embedder (recommender.embed.embedder) other than the one the index was built with."""
    recorded = manifest.model.get("fingerprint")
    if recorded != embedder.fingerprint:
        raise IndexProblem(
            f"{folder}: built with model {manifest.model.get('name')} ({recorded}), but the model given is "
            f"{embedder.name} ({embedder.fingerprint}); use the same model or rebuild the index"
        )

