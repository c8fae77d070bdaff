"""Load figures of `recommender serve` on loopback, against a static file server handing out the same JSON.

    python scripts/bench_serve.py --index INDEX [--seconds 12] [--levels 1 8 32 128] [--workers 1 2]
                                  [--ids 1000] [--rounds 3] [--check-seconds 30] [--only stored computed check]

The load generator is wrk (Debian: `apt-get install wrk`), the ceiling nginx (`apt-get install nginx-light`; without
it Python's http.server, named as such in the output) serving the service's own answers as files. Per concurrency
level (wrk's connections; 2 threads), for each of: stored answers (the batch's lists: run `recommender batch` on
INDEX first) and computed answers (the same index without its stored lists), with 1 and with 2 server processes
(`serve --workers`). Each level runs in rounds, the static server and the service taking turns, so that both
meet the same load from the rest of the machine; halfway through each level (the middle round's middle) a new
index version is committed, the way a build commits one (the manifest, with a new built_at, written to a temp file and
renamed over the old). Prints requests, req/s, p50 (median of the rounds) and p99 (worst round), failed requests
(socket errors, timeouts, non-2xx), the static server's req/s and p99 in the same rounds and the ratio, the load
average (the machine may be shared), and the version each process answers with at the end. `check`: a cold editors' /check (every curated article ranked) while 8 clients call /related
for stored answers; their p99 beside the same 8 clients without the check.

INDEX is copied to a temporary folder (never written); requests go to 127.0.0.1 only; every run is bounded
(wrk -d, timeouts)."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recommender.store.manifest import read_manifest, write_manifest  # noqa: E402

WRK_SCRIPT = r"""
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local threads = 0
setup = function(thread) threads = threads + 1; thread:set("tid", threads) end
init = function(args) math.randomseed(os.time() * 100 + (tid or 0)) end
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n', summary.requests, summary.duration, e.connect,
    e.read, e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""

NGINX_CONF = """worker_processes {workers};
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
daemon off;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  sendfile on;
  server {{ listen 127.0.0.1:{port}; root {root}; default_type application/json; }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        sys.exit(f"bench_serve: {tool} is not installed; install it with `apt-get install {package}` (Debian)")
    return path


def wait_ready(base: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench_serve: the server at {base} did not answer /health in {seconds:g} s")


def commit_new_version(folder: Path, n: int) -> None:
    manifest = read_manifest(folder)
    manifest.built_at = f"{manifest.built_at[:10]}T00:{n // 60 % 60:02d}:{n % 60:02d}Z"
    write_manifest(folder, manifest)


def cpu_seconds(group: int) -> float:
    """CPU time (user + system) used so far by the processes of a process group (a server and its workers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # fields after the name: state, ppid, pgrp, ..., utime (11), stime (12)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wrk(base: str, paths_file: Path, script: Path, clients: int, seconds: float, group: int) -> dict:
    """wrk's figures, and the CPU time the server (process group `group`) spent per request: a figure the rest
    of the machine's load hardly moves, unlike req/s."""
    threads = min(2, clients)
    seconds = max(1, round(seconds))  # wrk takes whole seconds
    cpu = cpu_seconds(group)
    done = subprocess.run([need("wrk", "wrk"), f"-t{threads}", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "30s",
                           "-s", str(script), base], capture_output=True, text=True,
                          env={**os.environ, "BENCH_PATHS": str(paths_file)}, timeout=seconds + 120)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"bench_serve: wrk failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    raw = json.loads(line[6:])
    cpu = cpu_seconds(group) - cpu
    failed = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    return {"clients": clients, "requests": raw["requests"], "failed": failed,
            "cpu_us": round(cpu * 1e6 / max(1, raw["requests"]), 1),
            "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
            "p50_ms": round(raw["p50_us"] / 1000, 2), "p99_ms": round(raw["p99_us"] / 1000, 2)}


def load_average() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def versions_served(base: str, tries: int = 12) -> list[str]:
    """The version each process answers with now (new connections land on any process)."""
    found = set()
    for _ in range(tries):
        try:
            with httpx.Client(base_url=base, timeout=30) as http:
                health = http.get("/health").json()
                found.add((health["pid"], health["version"]))
        except httpx.HTTPError:
            pass
    return sorted(version for _, version in found)


class Server:
    """`recommender serve` on the folder, in its own process group (ended by that group's id)."""

    def __init__(self, folder: Path, workers: int, editor: bool = False, policy: Path | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "recommender.cli", "serve", "--index", str(folder), "--port",
                   str(self.port), "--workers", str(workers), "--quiet"] + (["--editor"] if editor else []) + (
                      ["--policy", str(policy)] if policy else [])
        self.process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                        start_new_session=True)
        wait_ready(self.base)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(10)


def service_round(server: "Server", paths_file: Path, script: Path, clients: int, seconds: float, folder: Path,
                  swaps: list[int] | None) -> dict:
    """One wrk run on the service, with a new index version committed halfway through it unless swaps is None."""
    if swaps is None:
        return wrk(server.base, paths_file, script, clients, seconds, server.process.pid)
    swaps[0] += 1
    timer = threading.Timer(seconds / 2, commit_new_version, (folder, swaps[0]))
    timer.start()
    try:
        return wrk(server.base, paths_file, script, clients, seconds, server.process.pid)
    finally:
        timer.join()


def combined(runs: list[dict]) -> dict:
    """Rounds of one level as one row: their requests and failures added up, throughput over their time, the
    median p50 and the worst p99 of the rounds that finished requests (a round of computed answers at 128 clients
    may finish none: every request still queued when it ends)."""
    seconds = sum(r["requests"] / r["rps"] for r in runs if r["rps"])
    requests = sum(r["requests"] for r in runs)
    return {"requests": requests, "failed": sum(r["failed"] for r in runs),
            "cpu_us": round(sum(r["cpu_us"] * r["requests"] for r in runs) / max(1, requests), 1),
            "rps": round(sum(r["requests"] for r in runs) / seconds, 1) if seconds else 0.0,
            "p50_ms": median([r["p50_ms"] for r in runs if r["requests"]]),
            "p99_ms": max([r["p99_ms"] for r in runs if r["requests"]], default=float("nan"))}


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2] if values else float("nan")


def run_levels(name: str, server: "Server", static: tuple, args, work: Path, script: Path, folder: Path,
               swaps: list[int]) -> list[dict]:
    """Each level in rounds, each round the static server then the service (which crosses a swap), so that
    both meet the same load from the rest of the machine."""
    rows = []
    for clients in args.levels:
        load = load_average()
        statics, service = [], []
        for n in range(args.rounds):  # the swap midway through the level: in the middle round's middle
            statics.append(wrk(static[0], work / "static.txt", script, clients, args.seconds / args.rounds,
                               static[1]))
            service.append(service_round(server, work / "service.txt", script, clients, args.seconds / args.rounds,
                                         folder, swaps if n == args.rounds // 2 else None))
        time.sleep(0.5)
        ceiling = combined(statics)
        row = {"server": name, "clients": clients, **combined(service), "static_rps": ceiling["rps"],
               "static_p99_ms": ceiling["p99_ms"], "static_cpu_us": ceiling["cpu_us"], "load": load,
               "versions_at_end": versions_served(server.base)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def static_server(root: Path, work: Path) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    if shutil.which("nginx"):
        conf = work / "nginx.conf"
        conf.write_text(NGINX_CONF.format(workers=os.cpu_count() or 2, work=work, port=port, root=root))
        process = subprocess.Popen(["nginx", "-c", str(conf), "-e", str(work / "nginx-error.log")],
                                   start_new_session=True)
        name = "nginx"
    else:
        print("bench_serve: nginx is not installed (`apt-get install nginx-light`): the ceiling is Python's "
              "http.server, far below what a real static server does", file=sys.stderr)
        process = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                    "--directory", str(root)], start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        name = "python http.server"
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(base + "/0.json", timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return process, base, name


def check_while_loaded(folder: Path, args, paths_file: Path, script: Path) -> dict:
    """8 clients on stored answers with and without a cold /check running."""
    server = Server(folder, 1, editor=True, policy=args.policy)
    try:
        quiet = wrk(server.base, paths_file, script, 8, args.check_seconds, server.process.pid)
        took = {}

        def run_check():
            start = time.perf_counter()
            try:
                response = httpx.get(server.base + "/check", timeout=3600)
            except httpx.HTTPError:  # the server stopped at the end of the round, the check still running
                return
            took.update(status=response.status_code, seconds=round(time.perf_counter() - start, 1),
                        items=len(response.json().get("items", [])))

        checker = threading.Thread(target=run_check, daemon=True)
        load = load_average()
        timer = threading.Timer(1.0, checker.start)
        timer.start()
        loaded = wrk(server.base, paths_file, script, 8, args.check_seconds, server.process.pid)
        checker.join(5)
        if checker.is_alive():  # the check outlasted the clients: it ran through all of their requests
            took = {"still running after": f"{args.check_seconds + 4:g} s"}
        return {"without_check": quiet, "with_check": loaded, "check": took, "load": load}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="an index after `recommender batch`")
    parser.add_argument("--seconds", type=float, default=12.0, help="per level (whole seconds per round)")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--policy", type=Path, help="the policy the batch ran under (serve --policy)")
    parser.add_argument("--ids", type=int, default=1000, help="articles asked for (a random sample)")
    parser.add_argument("--rounds", type=int, default=3, help="static and service runs taking turns per level")
    parser.add_argument("--check-seconds", type=float, default=30.0)
    parser.add_argument("--only", nargs="+", default=["stored", "computed", "check"],
                        choices=["stored", "computed", "check"])
    args = parser.parse_args()
    need("wrk", "wrk")

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    work.chmod(0o755)  # nginx's workers (another user) read the static files
    folder = work / "index"
    shutil.copytree(args.index, folder, ignore=shutil.ignore_patterns("cache"))
    script = work / "bench.lua"
    script.write_text(WRK_SCRIPT)
    rows, swaps = [], [0]
    try:
        from recommender import Index

        with Index.open(folder) as index:
            ids = index.data.store.ids()
        sample = random.Random(0).sample(ids, min(args.ids, len(ids)))
        service_paths = [f"/related/{quote(ref, safe='/')}?k=10" for ref in sample]
        (work / "service.txt").write_text("\n".join(service_paths) + "\n")
        static_root = work / "static"
        static_root.mkdir()
        server = Server(folder, 1, policy=args.policy)
        try:  # the same JSON the service answers, as files; and a look at how the service answers them
            answered = {}
            with httpx.Client(base_url=server.base, timeout=120) as http:
                for n, path in enumerate(service_paths):
                    response = http.get(path)
                    (static_root / f"{n}.json").write_bytes(response.content)
                    how = response.headers.get("x-recommender-answer", "?")
                    answered[how] = answered.get(how, 0) + 1
        finally:
            server.stop()
        (work / "static.txt").write_text("".join(f"/{n}.json\n" for n in range(len(service_paths))))
        print(f"index {args.index}: {len(ids)} articles, {len(sample)} asked for ({answered}); "
              f"{args.seconds:g} s per level; load average {load_average()}", file=sys.stderr, flush=True)
        if answered.get("stored-list", 0) < len(sample) and "stored" in args.only:
            print("bench_serve: not every answer came from stored lists: run `recommender batch` on the index "
                  "with this code and policy first", file=sys.stderr)

        process, static_base, static_name = static_server(static_root, work)
        try:
            for kind in ("stored", "computed"):
                if kind not in args.only:
                    continue
                if kind == "computed":
                    (folder / "stored-lists.json").unlink(missing_ok=True)
                for workers in args.workers:
                    server = Server(folder, workers, policy=args.policy)
                    try:  # steady state: every process has answered every path once (then the levels' swaps)
                        wrk(server.base, work / "service.txt", script, 8 * workers, 2 + len(sample) / 500,
                            server.process.pid)
                        rows += run_levels(f"{kind}, {workers} process{'es' if workers > 1 else ''}", server,
                                           (static_base, process.pid), args, work, script, folder, swaps)
                    finally:
                        server.stop()
        finally:
            os.killpg(process.pid, 15)
            process.wait(10)
        check = None
        if "check" in args.only:
            shutil.rmtree(folder)
            shutil.copytree(args.index, folder, ignore=shutil.ignore_patterns("cache"))
            check = check_while_loaded(folder, args, work / "service.txt", script)
            print(json.dumps(check), flush=True)

        print(f"\n{'server':<22} {'clients':>7} {'requests':>9} {'failed':>6} {'req/s':>8} {'p50 ms':>7} "
              f"{'p99 ms':>7} {'CPU us/req':>10} | {static_name:>6} {'req/s':>8} {'p99 ms':>7} {'CPU us/req':>10} | "
              f"{'ratio':>5} {'CPU ratio':>9}  {'load avg':<15} versions at end")
        for r in rows:
            ratio = f"{r['rps'] / r['static_rps']:.2f}" if r["static_rps"] else "-"
            cpu_ratio = f"{r['static_cpu_us'] / r['cpu_us']:.2f}" if r["cpu_us"] else "-"
            print(f"{r['server']:<22} {r['clients']:>7} {r['requests']:>9} {r['failed']:>6} {r['rps']:>8} "
                  f"{r['p50_ms']:>7} {r['p99_ms']:>7} {r['cpu_us']:>10} | {'':>6} {r['static_rps']:>8} "
                  f"{r['static_p99_ms']:>7} {r['static_cpu_us']:>10} | {ratio:>5} {cpu_ratio:>9}  {r['load']:<15} "
                  f"{','.join(r['versions_at_end'])}")
        print("ratio: req/s over the static server's in the same rounds; CPU ratio: the static server's CPU time "
              "per request over the service's (what the ratio would be with the cores to themselves)")
        if check:
            print(f"\n8 clients on stored answers: p99 {check['without_check']['p99_ms']} ms without a check, "
                  f"{check['with_check']['p99_ms']} ms while a cold /check ran ({check['check']}; "
                  f"{check['with_check']['failed']} failed; load average {check['load']})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
