"""Load figures of `recommender serve` on loopback: requests/s and p50/p99 latency of GET /related/{id} at 1, 8
and 32 concurrent clients, with a new index version committed in the middle of each level, and failed requests.

    python scripts/bench_serve.py [--index /work/idx/mdn] [--seconds 10] [--max-requests 20000]

The index is copied to a temporary folder (the original is never written). The new version is committed the way
a build commits one: the manifest (here with a new built_at) written to a temp file and renamed over the old."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from recommender.store.manifest import read_manifest, write_manifest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def commit_new_version(folder: Path, n: int) -> None:
    manifest = read_manifest(folder)
    manifest.built_at = f"{manifest.built_at[:10]}T00:00:{n:02d}Z"
    write_manifest(folder, manifest)


async def level(base: str, ids: list[str], clients: int, seconds: float, max_requests: int, folder: Path,
                swap_no: int) -> dict:
    latencies, failures, versions = [], [], {}
    deadline = time.perf_counter() + seconds
    swap_at = time.perf_counter() + seconds / 2
    swapped = False
    rng = random.Random(clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(max_connections=clients)) as http:
        async def client():
            nonlocal swapped
            while time.perf_counter() < deadline and len(latencies) + len(failures) < max_requests:
                if not swapped and time.perf_counter() >= swap_at:
                    swapped = True
                    commit_new_version(folder, swap_no)
                ref = rng.choice(ids)
                start = time.perf_counter()
                try:
                    response = await http.get(f"/related/{ref}", params={"k": 10})
                    ok = response.status_code == 200
                except httpx.HTTPError as exc:
                    ok, response = False, exc
                took = time.perf_counter() - start
                if ok:
                    latencies.append(took)
                    version = response.json()["version"]
                    versions[version] = versions.get(version, 0) + 1
                else:
                    failures.append(str(getattr(response, "text", response))[:200])

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - start
        health = (await http.get("/health")).json()
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")
    return {"clients": clients, "requests": len(latencies) + len(failures), "failed": len(failures),
            "rps": round(len(latencies) / wall, 1), "p50_ms": round(pick(0.50), 1), "p99_ms": round(pick(0.99), 1),
            "versions": len(versions), "swaps_so_far": health["swaps"], "health": health["status"],
            "first_failures": failures[:3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = "/work/idx/mdn" if Path("/work/idx/mdn/manifest.json").exists() else "/work/idx/pydocs"
    parser.add_argument("--index", type=Path, default=Path(default))
    parser.add_argument("--seconds", type=float, default=10.0, help="per concurrency level")
    parser.add_argument("--max-requests", type=int, default=20000, help="per concurrency level")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    folder = work / "index"
    shutil.copytree(args.index, folder, ignore=shutil.ignore_patterns("cache"))
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    server = subprocess.Popen([sys.executable, "-m", "recommender.cli", "serve", "--index", str(folder),
                               "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        from recommender import Index

        with Index.open(folder) as index:
            ids = index.store.ids()
        httpx.get(f"{base}/related/{ids[0]}", timeout=60)  # warm-up: the first query loads the lexical index
        print(f"index {args.index} ({len(ids)} articles), {args.seconds:g} s per level, a new version committed "
              "halfway through each level", file=sys.stderr)
        rows = []
        for n, clients in enumerate(args.levels, 1):
            row = asyncio.run(level(base, ids, clients, args.seconds, args.max_requests, folder, n))
            rows.append(row)
            print(json.dumps(row))
        print("clients  requests  failed  req/s   p50 ms  p99 ms  versions served")
        for r in rows:
            print(f"{r['clients']:>7}  {r['requests']:>8}  {r['failed']:>6}  {r['rps']:>6}  {r['p50_ms']:>6}  "
                  f"{r['p99_ms']:>6}  {r['versions']}")
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
