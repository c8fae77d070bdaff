"""Every article's window vectors in the index folder, quantised to 8 bits:

    windows-TOKEN-codes.npy     windows x dim int8: each window vector (the head first, then every body window)
                                scaled so that its largest component is 127, rounded
    windows-TOKEN-scales.npy    windows float32: what a code is worth (the largest component / 127)
    windows-TOKEN-offsets.npy   n + 1 int64: article i owns rows offsets[i]:offsets[i + 1]

A quarter of float32's size, and what makes the window score exact (recommender.rank.windows): a dot product of
two code vectors is a whole number below 2^24, which float32 holds exactly whatever the order of the sum.
Named and checksummed in the manifest (roles "windows:codes", "windows:scales", "windows:offsets"),
memory-mapped by a reader, never pickled.

    windowann-TOKEN.faiss       the nearest-window index over those windows (store.windowann: flat or IVF-SQ8,
                                FAISS's format), built from the stored codes x scales; role "window_ann".
                                Only above rank.windowstage.EXACT_WINDOW_SEARCH windows: below, every search
                                reads the stored windows exactly, and no index is built (stats "window_ann":
                                SEARCHED_EXACTLY)
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from .manifest import IndexProblem, file_entry
from .npyfiles import write_npy_files

log = logging.getLogger(__name__)

PREFIX = "windows:"
ROLES = (PREFIX + "codes", PREFIX + "scales", PREFIX + "offsets")
ANN_ROLE = "window_ann"
# the manifest's stats["window_ann"] of a version with no nearest-window index: up to
# rank.windowstage.EXACT_WINDOW_SEARCH windows every search reads the stored windows themselves, never the index
SEARCHED_EXACTLY = "exact"


QUANTIZE_BLOCK = 65_536  # windows quantised at a time (100 MB of float32 work at 384 dimensions)


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 codes, float32 scales) of window vectors: codes = round(v / scale), scale = max |v| / 127. Row by
    row, a block at a time: no float copy of every window is made (at 1M articles, 4M windows: 6 GB each)."""
    if not hasattr(vectors, "shape"):  # anything else sliced by rows (a file read a block at a time) is kept
        vectors = np.asarray(vectors, dtype=np.float32)
    codes = np.empty(vectors.shape, dtype=np.int8)
    scales = np.empty(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), QUANTIZE_BLOCK):
        stop = min(len(vectors), start + QUANTIZE_BLOCK)
        codes[start:stop], scales[start:stop] = quantize_block(vectors[start:stop])
    return codes, scales


def quantize_block(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vectors = np.asarray(vectors, dtype=np.float32)
    largest = np.abs(vectors).max(axis=1) if len(vectors) else np.zeros(0, np.float32)
    scales = np.where(largest > 0, largest / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(vectors / scales[:, None]), -127, 127).astype(np.int8)
    return codes, scales


def write_windows(folder: Path, token: str, windows) -> dict:
    """Write one index version's windows (an embed.vectorize.Windows or embed.carried.CarriedWindows); returns the
    manifest entries."""
    codes, scales = windows.codes(quantize)
    return write_npy_files(folder, f"windows-{token}", PREFIX, {"codes": codes, "scales": scales,
                                                                 "offsets": windows.offsets})


def read_windows(folder: Path, manifest) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(codes, scales, offsets), memory-mapped, or None for an index stored without windows."""
    if not all(role in manifest.files for role in ROLES):
        return None
    arrays = []
    for role in ROLES:
        path = Path(folder) / manifest.files[role].name
        try:
            arrays.append(np.load(path, mmap_mode="r", allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise IndexProblem(f"{path}: cannot read ({exc}); rebuild the index") from None
    codes, scales, offsets = arrays
    if offsets.ndim != 1 or len(offsets) != manifest.count + 1 or codes.ndim != 2 or codes.dtype != np.int8 \
            or int(offsets[-1]) != len(codes) or codes.shape[1] != manifest.dimension or len(scales) != len(codes):
        raise IndexProblem(f"{folder}: stored windows do not fit the index ({len(offsets) - 1} articles, "
                           f"{len(codes)} windows); rebuild the index")
    return codes, scales, offsets


def carried_from(folder: Path, manifest, hashes) -> "Carried | None":
    """The version `manifest` names as embed.carried.Carried (its content hashes `hashes`, in row order: the
    caller checked it was made with the same model and preparation), or None when it stores no exact vectors
    (an approximate vector index keeps only its codes) or no windows, or when they are damaged (checked as a
    query checks its files: manifest.verify_files). The new version is then made from the vector cache alone."""
    from ..embed.carried import Carried
    from .manifest import check_vectors, verify_files

    roles = ("query:vectors", *ROLES)
    if manifest is None or hashes is None or not all(role in manifest.files for role in roles):
        return None
    try:
        verify_files(folder, replace(manifest, files={role: manifest.files[role] for role in roles}))
        path = Path(folder) / manifest.files["query:vectors"].name
        vectors = np.load(path, mmap_mode="r", allow_pickle=False)
        if vectors.ndim != 2 or vectors.dtype != np.float32:
            raise IndexProblem(f"{path}: not a matrix of float32 vectors")
        check_vectors(folder, manifest, vectors.shape, len(hashes))  # the counts and dimension a query checks
        codes, scales, offsets = read_windows(folder, manifest)
    except (IndexProblem, OSError, ValueError) as exc:
        log.warning("%s: the replaced version's vectors are not reused (%s)", folder, exc)
        return None
    return Carried.of(hashes, vectors, codes, scales, offsets)


def write_window_ann(folder: Path, token: str, entries: dict, previous: Path | None = None) -> tuple[dict, dict]:
    """Build the nearest-window index over the windows just written (their files named in `entries`, as
    write_windows returns them), choose its nprobe from measured recall, and write it; returns (the manifest
    entry, the stats it records: its backend and, for IVF, recall, nprobe, lists and whether its training was
    reused, and its training key). previous: the window index of the version being replaced (same model and
    preparation), whose training and nprobe an IVF index keeps when it suits (windowann.reusable_training) and
    still reaches its recall there."""
    from .windowann import WindowANN, reusable_training
    from .windowrecall import keep_floor, tune_nprobe

    codes, scales = (np.load(Path(folder) / entries[PREFIX + name].name, mmap_mode="r", allow_pickle=False)
                     for name in ("codes", "scales"))
    trained = reusable_training(previous, *codes.shape) if previous is not None else None
    replaced = replaced_manifest(folder) if trained is not None else None
    lists = previous_lists(folder, replaced, previous, codes, scales) if replaced is not None else None
    ann = WindowANN.from_codes(codes, scales, trained=trained, lists=lists)
    reused = trained is not None and ann.approximate
    stats = carried_recall(replaced, ann, lists) if reused else None
    if stats is None:
        stats = tune_nprobe(ann, codes, scales, keep=reused)  # a kept training keeps its nprobe too
        stats["window_ann_recall_churn"] = 0 if ann.approximate else None
    if reused and min(v for k, v in stats.items() if k.startswith("window_ann_recall@")) < keep_floor(stats):
        ann, reused = WindowANN.from_codes(codes, scales), False  # the old training no longer fits: train again
        stats = {**tune_nprobe(ann, codes, scales), "window_ann_recall_churn": 0}
    stats = {key: value for key, value in stats.items() if value is not None}
    if ann.approximate:
        stats["window_ann_training"] = "reused" if reused else "new"
        stats["window_ann_key"] = ann.training_key  # what the nightly reach checks (batch/window_reach.py)
    path = Path(folder) / f"windowann-{token}.faiss"
    ann.save(path)
    return {ANN_ROLE: file_entry(path)}, {"window_ann": ann.backend, **stats}


def replaced_manifest(folder: Path):
    """The manifest of the version being replaced (not yet replaced: a new version's manifest is written last), or
    None when it cannot be read."""
    from .manifest import read_manifest

    try:
        return read_manifest(folder)
    except (IndexProblem, OSError, ValueError):
        return None


def carried_recall(replaced, ann, lists: np.ndarray | None) -> dict | None:
    """The recall stats of the replaced version (`replaced`: its manifest) for an IVF index that keeps its
    training and nprobe, when the windows new, changed or removed since that recall was measured (counted with
    `lists`: -1 for a window not in the replaced index) are at most RECALL_DRIFT of the windows; else None (measure
    again). Under the same training and nprobe a window's list and a query's probed lists are functions of their
    vectors (`Coarse`), so a sampled query finds an unchanged window exactly when it did at the measure: the figure
    moves only by pairs with a window changed since (about that share times the misses, 0.05 x 0.03 at most)."""
    from .windowrecall import RECALL_DRIFT, RECALL_K

    if lists is None or replaced is None:
        return None
    old = replaced.stats
    recall = f"window_ann_recall@{RECALL_K}"  # a version measured otherwise (recall@50 before 2026-12-06): again
    if recall not in old or old.get("window_ann_nprobe") != ann.nprobe \
            or old.get("window_ann_nlist") != int(ann.index.nlist) or "windows" not in old:
        return None
    matched = int((lists >= 0).sum())
    # a version from before this count measured its recall on its own windows (every write did): 0 since
    churn = int(old.get("window_ann_recall_churn", 0)) + (len(lists) - matched) + max(0, int(old["windows"]) - matched)
    if churn > RECALL_DRIFT * len(lists):
        return None
    return {recall: old[recall], "window_ann_nprobe": ann.nprobe, "window_ann_nlist": int(ann.index.nlist),
            "window_ann_recall_queries": old.get("window_ann_recall_queries"), "window_ann_recall_churn": churn,
            # the ceiling measured with it (windowrecall.keep_floor reads it), carried the same way
            "window_ann_recall_ceiling": old.get("window_ann_recall_ceiling")}


def previous_lists(folder: Path, replaced, previous: Path, codes: np.ndarray,
                   scales: np.ndarray) -> np.ndarray | None:
    """Each window's list in the replaced version's IVF window index, where an equal window was in it
    (store.windowann.kept_lists; -1 where not), read with that version's windows (`replaced`: its manifest,
    which names them); None when they cannot be read."""
    from .windowann import kept_lists

    if replaced.files.get(ANN_ROLE) is None or replaced.files[ANN_ROLE].name != Path(previous).name:
        return None
    try:
        stored = read_windows(folder, replaced)
    except IndexProblem:
        return None
    return None if stored is None else kept_lists(previous, stored[0], stored[1], codes, scales)


def read_window_ann(folder: Path, manifest):
    """The stored nearest-window index (store.windowann.WindowANN, memory-mapped), or None for an index built
    before it."""
    entry = manifest.files.get(ANN_ROLE)
    if entry is None:
        return None
    from .windowann import WindowANN

    path = Path(folder) / entry.name
    try:
        ann = WindowANN.load(path)
    except (OSError, RuntimeError, ValueError) as exc:  # FAISS reports a damaged file as RuntimeError
        raise IndexProblem(f"{path}: cannot read the window index ({exc}); rebuild the index") from None
    windows = manifest.stats.get("windows")
    if ann.count != windows or int(ann.index.d) != manifest.dimension:
        raise IndexProblem(f"{path}: window index holds {ann.count} windows of dimension {ann.index.d}, the index "
                           f"stores {windows} of dimension {manifest.dimension}; rebuild the index")
    return ann
