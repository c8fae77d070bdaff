"""Read time and peak memory of hostile single files, with this checkout's reader and with an older revision's, in
the same run (each read in a fresh process, under a timeout and a memory limit):

    python scripts/bench_read_hostile.py --old b354a54 --timeout 300

Files: a news item with a 51 KB and a 500 KB body of `*a ` (quadratic emphasis pattern before issue 24),
unclosed <script> and <svg/> bodies, a 5 MB prose body, and a YAML alias bomb used by `title: *i`.
Prints one line a file: seconds and peak RSS for each revision, or how the read was stopped.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from campaign_input import ALIAS_BOMB  # noqa: E402

HEAD = "---\ntitle: Hostile\nslug: hostile\n---\n"
PROSE = (ROOT / "demo" / "blog" / "backyard-telescope.md").read_text(encoding="utf-8").split("---", 2)[2]
FILES = {
    "emphasis-51KB.md": HEAD + "*a " * 17_000,
    "emphasis-500KB.md": HEAD + "*a " * 170_000,
    "unclosed-script-51KB.md": HEAD + "Words. <script>x\n" * 3_000,
    "unclosed-svg-51KB.md": HEAD + "Words <svg/> more\n" * 2_850,
    "prose-5MB.md": HEAD + PROSE * (5_000_000 // len(PROSE)),
    "alias-bomb.md": "---\n" + ALIAS_BOMB + "title: *i\n---\nbody\n",
}
READ = ("import sys, time; from pathlib import Path; from recommender.ingest.reader import read_file; "
        "t = time.perf_counter(); found, problems = read_file(Path(sys.argv[1]), Path(sys.argv[1]).parent); "
        "print(round(time.perf_counter() - t, 2), len(found), [str(p)[:90] for p in problems])")


def limit_memory(megabytes: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (megabytes << 20, megabytes << 20))
    return apply


def measure(tree: Path, path: Path, timeout: float, memory_mb: int) -> str:
    command = ["/usr/bin/time", "-f", "RSS %M", sys.executable, "-c", READ, str(path)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=tree,
                              env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
                              preexec_fn=limit_memory(memory_mb))
    except subprocess.TimeoutExpired:
        return f"stopped at the {timeout:g} s timeout"
    wall = time.perf_counter() - start
    rss = next((int(line.split()[1]) // 1024 for line in proc.stderr.splitlines() if line.startswith("RSS ")), 0)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-2 if "RSS" in proc.stderr else -1]
        return f"failed after {wall:.1f} s, peak {rss} MB: {last[:100]}"
    read_seconds, articles, problems = proc.stdout.split(" ", 2)
    return f"read {read_seconds} s, peak {rss} MB, {articles} articles {problems.strip()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default="b354a54", help="git revision to compare with")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--memory-mb", type=int, default=3000, help="address-space limit of each read")
    parser.add_argument("--only", nargs="*", help="file names to run (default: all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        old.mkdir()
        archive = subprocess.run(["git", "archive", args.old], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        for name, text in FILES.items():
            if args.only and name not in args.only:
                continue
            path = Path(tmp) / "files" / name
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            for label, tree in (("now", ROOT), (args.old, old)):
                print(f"{name:26} {label:8} {measure(tree, path, args.timeout, args.memory_mb)}", flush=True)


if __name__ == "__main__":
    main()
