"""Run every benchmark and write BENCHMARKS.md.

    python -m bench                 # all benchmarks, writes BENCHMARKS.md
    python -m bench ingest quality  # only these; BENCHMARKS.md keeps the others' last sections

Each benchmark is a script in this folder that prints its own markdown section
(figures beside their same-run baseline and target). The runner adds the
machine they ran on and the command, and keeps one section per benchmark.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUTPUT = ROOT / "BENCHMARKS.md"

#: Run order: quick ones first.
BENCHMARKS = [
    "cold_start", "ingest", "engine_speed", "quality", "learning_quality", "freshness", "sustained", "api",
    "postgres", "gui_storm", "transformer",
]

MARK = "<!-- bench:{} -->"


def machine() -> str:
    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            kb = int(fh.readline().split()[1])
            mem = f", {kb / 2**20:.0f} GiB RAM"
    except OSError:
        pass
    cpu = platform.processor() or platform.machine()
    return (
        f"{os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def run(name: str, timeout: float) -> str:
    script = HERE / f"{name}.py"
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=timeout,
        )
        body = proc.stdout.strip()
        if proc.returncode != 0:
            crashed = not body or "Traceback" in proc.stderr
            if crashed:
                body += f"\n\n**failed** (exit {proc.returncode}):\n\n```\n{proc.stderr.strip()[-3000:]}\n```"
            else:  # it ran to the end and says which target it missed (exit 1 by convention)
                body += f"\n\n(exit {proc.returncode}: a target was missed, see above)"
    except subprocess.TimeoutExpired:
        body = f"**timed out** after {timeout:.0f} s"
    took = time.perf_counter() - start
    return (
        f"{MARK.format(name)}\n## {name}\n\n"
        f"`python bench/{name}.py` ({took:.0f} s, {time.strftime('%Y-%m-%d')})\n\n{body}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(BENCHMARKS)})")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per benchmark (default 1800)")
    parser.add_argument(
        "--from-results", action="store_true",
        help="do not run: assemble BENCHMARKS.md from the recorded bench/results/NAME.md files",
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = args.names or [n for n in BENCHMARKS if (HERE / f"{n}.py").exists()]

    sections: dict[str, str] = {}
    if OUTPUT.exists():
        text = OUTPUT.read_text()
        for match in re.finditer(r"<!-- bench:(\w+) -->\n(.*?)(?=<!-- bench:|\Z)", text, re.S):
            sections[match.group(1)] = f"<!-- bench:{match.group(1)} -->\n{match.group(2).rstrip()}\n"
    for name in names:
        recorded = HERE / "results" / f"{name}.md"
        if args.from_results:
            if recorded.exists():
                # the recorded file's own headings sit one level below the section's
                body = re.sub(r"^(#+) ", r"#\1 ", recorded.read_text().strip(), flags=re.M)
                sections[name] = f"{MARK.format(name)}\n{body}\n"
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        sections[name] = run(name, args.timeout)
        print(sections[name])
    ordered = [sections[n] for n in BENCHMARKS if n in sections]
    OUTPUT.write_text(
        "# Benchmarks\n\n"
        "Made by `python -m bench` (one benchmark: `python -m bench NAME`). Every figure is\n"
        "measured beside its baseline in the same run; ratios are what to compare across\n"
        f"machines.\n\nLast run on: {machine()}.\n\n" + "\n".join(ordered)
    )
    print(f"wrote {OUTPUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
