"""scripts/bench_link_blocks.py's full-phase helpers: blocks claimed from a shared counter are each taken once, and
the dumps of a phase's parts compare row by row with one dump of the same lists (what the closing notes' "0 of
1,000,000 lists differ" rests on)."""

import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_link_blocks", ROOT / "scripts" / "bench_link_blocks.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_claimed_blocks_are_each_taken_once_by_whichever_process_asks(tmp_path):
    counter = str(tmp_path / "claim")
    first, second = bench.claimed(counter, 1000, 256), bench.claimed(counter, 1000, 256)
    taken = [next(first), next(second), next(second), next(first)]  # two processes asking in turn
    assert next(first, None) is None and next(second, None) is None  # nothing left for either
    assert [int(rows[0]) for rows in taken] == [0, 256, 512, 768]
    assert np.array_equal(np.concatenate(taken), np.arange(1000))


def dump(path: Path, lists: dict) -> None:
    rows = list(lists)
    np.savez(path, rows=np.array(rows, np.int64), lens=np.array([len(lists[r][0]) for r in rows]),
             links=np.array([x for r in rows for x in lists[r][0]], np.int64),
             scores=np.array([x for r in rows for x in lists[r][1]], np.float64))


def test_a_phases_parts_compare_row_by_row_with_one_dump(tmp_path, capsys):
    rng = np.random.default_rng(4)
    lists = {r: (rng.integers(0, 50, int(rng.integers(0, 6))).tolist(), rng.random(6).tolist()) for r in range(40)}
    lists = {r: (links, scores[:len(links)]) for r, (links, scores) in lists.items()}
    dump(tmp_path / "whole.npz", lists)
    order = rng.permutation(40)  # the parts hold their rows in the order their blocks were claimed
    dump(tmp_path / "a.npz", {int(r): lists[int(r)] for r in order[:17]})
    dump(tmp_path / "b.npz", {int(r): lists[int(r)] for r in order[17:]})
    merged = bench.read_dump(f"{tmp_path / 'b.npz'},{tmp_path / 'a.npz'}")
    whole = bench.read_dump(str(tmp_path / "whole.npz"))
    for key in ("rows", "lens", "links", "scores"):
        assert np.array_equal(merged[key], whole[key]), key
    bench.compare(f"{tmp_path / 'a.npz'},{tmp_path / 'b.npz'}", str(tmp_path / "whole.npz"))
    assert "40 lists: 0 differ in their links, 0 more in scores alone" in capsys.readouterr().out
    changed = dict(lists)
    row = next(r for r in order[:17] if lists[int(r)][0])
    changed[int(row)] = ([x + 1 for x in lists[int(row)][0]], lists[int(row)][1])
    dump(tmp_path / "a.npz", {int(r): changed[int(r)] for r in order[:17]})
    bench.compare(f"{tmp_path / 'a.npz'},{tmp_path / 'b.npz'}", str(tmp_path / "whole.npz"))
    assert "40 lists: 1 differ in their links" in capsys.readouterr().out
