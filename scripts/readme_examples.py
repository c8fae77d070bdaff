#!/usr/bin/env python3
"""Run the README's examples on the demo corpus and write their real output into README.md (as cog does).

An example in README.md is a region between marker comments:

    <!-- example: NAME -->
    ```text
    $ recommender related text/hiring-algorithm-bias -k 5
    ...output, rewritten by this script...
    ```
    <!-- /example -->

* Shell regions: every line that starts with `$ ` is a command (a line ending in `\\` continues it). The
  commands run in README order, in one temporary copy of `demo/`, with RECOMMENDER_INDEX=demo-index, on a
  terminal (a pty of 80 columns, the usual default), so the output is what a user sees; each command's output
  is written after it. A command ending in ` &` runs in the background until the end (`recommender serve`);
  `:8000` and `--port 8000` are run on a free port and shown as 8000. `echo $?` sees the previous command's
  exit code.
* Python regions: a ```python fence, run as written (`python FILE` in the same folder), followed by a ```text
  fence of what it printed. A Python example that fails, or any output with a traceback, stops the script.

The converted model is cached in the temporary folder (RECOMMENDER_MODELS), so the first command converts it
as on a fresh machine, and its log line shows the default place, ~/.cache/recommender/models.

    python scripts/readme_examples.py            # rewrite README.md with the current output
    python scripts/readme_examples.py --check    # exit 1, with a diff, if README.md is not current

The check ignores only what varies from run to run: timings, the dates of "now", index version hashes and the
temporary folder. tests/test_readme.py runs the check.
"""

from __future__ import annotations

import argparse
import difflib
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SHOWN_PORT = "8000"
SHOWN_MODELS = "~/.cache/recommender/models"  # where converted models go by default
COMMAND_TIMEOUT = 900
TERMINAL_SIZE = (50, 80)  # rows, columns

REGION = re.compile(r"(?P<open><!-- example: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(?P<close><!-- /example -->)",
                    re.S)
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<text>.*?)^```[ \t]*$\n?", re.S | re.M)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Region:
    name: str
    body: str
    start: int  # offsets of the body in the README text
    end: int


def find_regions(text: str) -> list[Region]:
    regions = [Region(m["name"], m["body"], m.start("body"), m.end("body")) for m in REGION.finditer(text)]
    names = [r.name for r in regions]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SystemExit(f"README: example regions named more than once: {', '.join(duplicates)}")
    if text.count("<!-- example:") != len(regions):
        raise SystemExit("README: an `<!-- example: NAME -->` marker has no `<!-- /example -->`")
    return regions


def commands_of(fence_text: str) -> list[str]:
    """The `$ ` commands of a shell fence (continuation lines joined with their backslash-newline)."""
    commands: list[str] = []
    lines = fence_text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("$ "):
            command = lines[i][2:]
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command += "\n" + lines[i]
            commands.append(command)
        i += 1
    return commands


def clean_output(raw: bytes, folder: Path, port: int, models: Path | None = None) -> str:
    """Terminal-like text: progress-bar redraws (\\r) reduced to their last state, no colour codes."""
    text = ANSI.sub("", raw.decode("utf-8", errors="replace"))
    lines = []
    for line in text.split("\n"):
        parts = [p for p in line.split("\r") if p.strip()]
        lines.append((parts[-1] if parts else "").rstrip())
    while lines and not lines[-1]:
        lines.pop()
    out = "\n".join(lines)
    if models is not None:
        out = out.replace(str(models), SHOWN_MODELS)
    out = out.replace(str(folder), ".").replace(f":{port}", f":{SHOWN_PORT}")
    return out + "\n" if out else ""


def run_on_terminal(argv: list[str], cwd: Path, env: dict) -> tuple[int, bytes]:
    """Run a command with a terminal (a pty of TERMINAL_SIZE) as its stdin, stdout and stderr, as a user at a
    terminal runs it: tables cut long cells there, and logs and results interleave as they are written."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *TERMINAL_SIZE, 0, 0))
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + COMMAND_TIMEOUT
    try:
        while True:
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)  # the session started for this command
                raise SystemExit(f"`{argv[-1]}` took more than {COMMAND_TIMEOUT} s")
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every process holding the terminal has ended
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    return proc.wait(), b"".join(chunks)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Workspace:
    """A temporary copy of demo/ where the examples run, one after the other, as a user would run them."""

    root: Path = ROOT
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="readme-examples-")))
    rc: int = 0
    port: int = field(default_factory=free_port)
    background: list = field(default_factory=list)
    overrides_after_python: list = field(default_factory=list)  # what each Python example left in the overrides

    def __post_init__(self):
        self.folder = self.base / "work"
        self.models = self.base / "models"  # empty: the first example converts the model, as on a new machine
        self.folder.mkdir()
        shutil.copytree(self.root / "demo", self.folder / "demo")
        bin_dir = self.base / "bin"  # `recommender` is this checkout's, run by this Python
        bin_dir.mkdir()
        shim = bin_dir / "recommender"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m recommender.cli "$@"\n')
        shim.chmod(0o755)
        self.env = dict(os.environ)
        self.env.update(
            PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            PYTHONPATH=os.pathsep.join(p for p in (str(self.root), os.environ.get("PYTHONPATH")) if p),
            RECOMMENDER_INDEX="demo-index", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
            LC_ALL="C.UTF-8", TZ="UTC", TERM="dumb", RECOMMENDER_MODELS=str(self.models),
        )
        self.env.pop("RECOMMENDER_TOKEN", None)
        self.env.pop("COLUMNS", None)

    def shell(self, command: str) -> str:
        run = re.sub(rf"(:|--port ){SHOWN_PORT}\b", rf"\g<1>{self.port}", command)
        if run.rstrip().endswith("&"):
            return self._background(run.rstrip()[:-1])
        self.rc, raw = run_on_terminal(["bash", "-c", f"(exit {self.rc}); {run}"], self.folder, self.env)
        out = clean_output(raw, self.folder, self.port, self.models)
        if "Traceback (most recent call last)" in out:
            raise SystemExit(f"`{command}` crashed:\n{out}")
        return out

    def _background(self, command: str) -> str:
        log = open(self.base / f"background-{len(self.background)}.log", "wb")
        proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=self.folder, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.background.append((proc, log))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # a server: wait until it accepts connections
            if proc.poll() is not None:
                raise SystemExit(f"`{command}` stopped: " + (self.base / log.name).read_text(errors="replace"))
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return ""
            time.sleep(0.2)
        raise SystemExit(f"`{command}` did not listen on port {self.port} within 120 s")

    def python(self, code: str) -> str:
        script = self.base / "example.py"
        script.write_text(code)
        done = subprocess.run([sys.executable, str(script)], cwd=self.folder, env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=COMMAND_TIMEOUT)
        out = clean_output(done.stdout, self.folder, self.port, self.models)
        if done.returncode or "Traceback (most recent call last)" in out:
            raise SystemExit(f"the Python example failed (exit {done.returncode}):\n{out}")
        self.overrides_after_python.append(self._overrides())
        return out

    def _overrides(self) -> list[str]:
        code = ("from recommender.rank.overrides import Overrides\n"
                "with Overrides.open('demo-index') as o: print('\\n'.join(str(x.to_dict()) for x in o.all()))")
        done = subprocess.run([sys.executable, "-c", code], cwd=self.folder, env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, check=True)
        return [line for line in done.stdout.decode().splitlines() if line]

    def close(self, keep: bool = False) -> None:
        for proc, log in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # the session this script started for it
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            log.close()
        self.background.clear()
        if not keep:
            shutil.rmtree(self.base, ignore_errors=True)


def render_region(body: str, workspace: Workspace) -> str:
    """The region's body with fresh output."""
    fences = list(FENCE.finditer(body))
    if not fences:
        raise SystemExit(f"an example region has no ``` fence:\n{body}")
    first = fences[0]
    if first["lang"] == "python":
        output = workspace.python(first["text"])
        return body[:first.end()] + f"```text\n{output}```\n"
    if len(fences) != 1:
        raise SystemExit(f"a shell example region holds one fence, not {len(fences)}:\n{body}")
    commands = commands_of(first["text"])
    if not commands:
        raise SystemExit(f"a shell example region has no `$ ` command:\n{body}")
    text = "".join(f"$ {command}\n{workspace.shell(command)}" for command in commands)
    return body[:first.start()] + f"```{first['lang']}\n{text}```\n" + body[first.end():]


def regenerate(text: str, workspace: Workspace, progress=None) -> str:
    """README text with every example region's output rewritten, the regions run in order."""
    out, position = [], 0
    for region in find_regions(text):
        if progress:
            progress(region.name)
        out.append(text[position:region.start])
        out.append(render_region(region.body, workspace))
        position = region.end
    out.append(text[position:])
    return "".join(out)


# --- what the check ignores -------------------------------------------------------------------------------

_VARIABLE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"), "<now>"),  # dates of now
    (re.compile(r"\[\d+:\d\d(?::\d\d)?<[^\]]*\]"), "[<progress time>]"),  # tqdm's elapsed, left and rate
    (re.compile(r"\|[█▏▎▍▌▋▊▉ ]+\|"), "|<bar>|"),  # its bar, as wide as the rate beside it leaves room for
    (re.compile(r"\b\d+(?:\.\d+)? ?s\b"), "<n> s"),  # durations: "(1.6 s)", "2.2 s"
    (re.compile(r"\"seconds\": ?\{[^}]*\}"), '"seconds": {}'),
    (re.compile(r"\"seconds\": ?[\d.]+"), '"seconds": <n>'),
    (re.compile(r"^(seconds: ).*$", re.M), r"\1<timings>"),  # the batch summary's phase timings
    (re.compile(r"(\"?version\"?: ?\"?)[0-9a-f]{12}\b"), r"\1<version>"),  # hash of a manifest with its date
]


def normalise(text: str) -> str:
    """Text with the parts that vary between runs (and only those) replaced by placeholders."""
    lines = []
    seconds_column = False
    for line in text.splitlines():
        line = line.rstrip()
        if re.search(r"\s{2}seconds$", line):  # a table whose last column is a timing (evaluate)
            seconds_column = True
        elif seconds_column and re.search(r"\s\d+(?:\.\d+)?$", line):
            line = re.sub(r"\d+(?:\.\d+)?$", "<n>", line)
        elif not line.startswith("---"):
            seconds_column = False
        lines.append(line)
    text = "\n".join(lines)
    for pattern, replacement in _VARIABLE:
        text = pattern.sub(replacement, text)
    return text


_NUMBER = re.compile(r"-?\d+\.\d+")
TOLERANCE = 0.02  # scores differ in the last digits between CPUs (bf16 or fp32 inference): abs or 2% relative


def same_line(old: str, new: str) -> bool:
    """Lines equal but for spacing and for decimal numbers within TOLERANCE of each other."""
    if old == new:
        return True
    if _NUMBER.sub("<x>", " ".join(old.split())) != _NUMBER.sub("<x>", " ".join(new.split())):
        return False
    for a, b in zip(_NUMBER.findall(old), _NUMBER.findall(new)):
        a, b = float(a), float(b)
        if abs(a - b) > TOLERANCE and abs(a - b) > TOLERANCE * max(abs(a), abs(b)):
            return False
    return True


def differences(current: str, fresh: str) -> list[str]:
    """A unified diff of the normalised texts; empty when the README is current (numbers within tolerance)."""
    old, new = normalise(current).splitlines(), normalise(fresh).splitlines()
    if len(old) == len(new) and all(same_line(a, b) for a, b in zip(old, new)):
        return []
    return list(difflib.unified_diff(old, new, "README.md", "README.md (fresh output)", lineterm="", n=2))


def write_atomic(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="Do not write; exit 1 if README.md is not current.")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder (its path is printed).")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)

    current = args.readme.read_text(encoding="utf-8")
    workspace = Workspace()
    started = time.monotonic()
    say = (lambda name: None) if args.quiet else (lambda name: print(f"running example: {name}", file=sys.stderr))
    try:
        fresh = regenerate(current, workspace, say)
    finally:
        workspace.close(keep=args.keep)
        if args.keep:
            print(f"kept {workspace.folder}", file=sys.stderr)
    seconds = time.monotonic() - started
    diff = differences(current, fresh)
    if args.check:
        if diff:
            print("\n".join(diff))
            print(f"{args.readme}: examples are not current; run `python scripts/readme_examples.py`",
                  file=sys.stderr)
            return 1
        print(f"{args.readme}: {len(find_regions(current))} examples current ({seconds:.0f} s)", file=sys.stderr)
        return 0
    if fresh != current:
        write_atomic(args.readme, fresh)
    print(f"{args.readme}: {len(find_regions(fresh))} examples written, {len(diff)} diff lines beyond timings "
          f"({seconds:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
