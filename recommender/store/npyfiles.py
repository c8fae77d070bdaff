"""Named arrays written as plain .npy files in an index folder (never pickle), each returned as the manifest
entry that names and checksums it, so a reader can memory-map them and the manifest refuses a changed one."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..common.atomic import atomic_path
from .manifest import IndexProblem, file_entry


def write_npy_files(folder: Path, stem: str, role_prefix: str, arrays: dict[str, np.ndarray]) -> dict:
    """Write each array as `{stem}-{name}.npy` (temp file + rename); returns {role_prefix + name: FileEntry}."""
    entries = {}
    for name, array in arrays.items():
        path = Path(folder) / f"{stem}-{name}.npy"
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
        entries[role_prefix + name] = file_entry(path)
    return entries


def write_csr_files(folder: Path, stem: str, role_prefix: str, name: str, blocks: Callable[[], Iterable]) -> dict:
    """The three files write_npy_files writes for a CSR matrix's arrays ({name}_data, _indices, _indptr: the same
    bytes, index dtype int32 unless the entries or the columns need int64, as SciPy makes it), from its rows in
    consecutive blocks, never held whole. blocks: makes the blocks afresh (SciPy CSR matrices of all the
    columns), called twice: to count each row's entries, then to write them."""
    lengths, columns, dtype = [], 0, np.dtype(np.float32)
    for part in blocks():
        lengths.append(np.diff(part.indptr))
        columns, dtype = part.shape[1], part.dtype
    counts = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    nnz = int(counts.sum())
    wide = max(nnz, columns) > np.iinfo(np.int32).max
    index = np.dtype(np.int64 if wide else np.int32)
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(index)
    entries = write_npy_files(folder, stem, role_prefix, {f"{name}_indptr": indptr})
    paths = {part: Path(folder) / f"{stem}-{name}_{part}.npy" for part in ("data", "indices")}
    with atomic_path(paths["data"]) as data_tmp, atomic_path(paths["indices"]) as indices_tmp, \
            open(data_tmp, "wb") as data_out, open(indices_tmp, "wb") as indices_out:
        for handle, kind in ((data_out, dtype), (indices_out, index)):
            np.lib.format.write_array_header_1_0(handle, {"descr": np.lib.format.dtype_to_descr(kind),
                                                          "fortran_order": False, "shape": (nnz,)})
        written = 0
        for part in blocks():
            data_out.write(np.ascontiguousarray(part.data, dtype=dtype).tobytes())
            indices_out.write(np.ascontiguousarray(part.indices, dtype=index).tobytes())
            written += part.nnz
        if written != nnz:
            raise RuntimeError(f"{stem}-{name}: the blocks gave {written} entries, then {nnz}")
    for part, path in paths.items():
        entries[f"{role_prefix}{name}_{part}"] = file_entry(path)
    return entries


def mapped_npy(path: Path, remedy: str) -> np.ndarray:
    """A .npy file memory-mapped read-only as a plain view (NumPy's memmap subclass costs a Python wrapper on every
    lookup); IndexProblem naming the file and `remedy` when it cannot be read."""
    try:
        return np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise IndexProblem(f"{path}: cannot read ({exc}); {remedy}") from None


def mapped_npz(path: Path, names: Iterable[str]) -> dict[str, np.ndarray]:
    """Arrays of an uncompressed .npz (what np.savez writes) memory-mapped read-only, not read into memory: each
    member is a .npy file stored as it is, at an offset of the zip file (its local header says where)."""
    import struct
    import zipfile

    out = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as handle:
        for name in names:
            info = archive.getinfo(f"{name}.npy")
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f"{path}: {name} is compressed; it cannot be mapped")
            handle.seek(info.header_offset)
            local = handle.read(30)
            if local[:4] != b"PK\x03\x04":
                raise ValueError(f"{path}: {name}: not a zip member header")
            name_length, extra_length = struct.unpack("<HH", local[26:30])
            handle.seek(info.header_offset + 30 + name_length + extra_length)
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(handle)
            if dtype.hasobject:
                raise ValueError(f"{path}: {name} holds objects")
            if int(np.prod(shape)) == 0:
                out[name] = np.zeros(shape, dtype=dtype)
                continue
            out[name] = np.memmap(path, dtype=dtype, mode="r", offset=handle.tell(), shape=shape,
                                  order="F" if fortran else "C")
    return out
