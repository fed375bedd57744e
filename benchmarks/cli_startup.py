"""How long the `trainkit` command takes to start, against bare `python -c pass` measured in the same run.

Runs `python -c pass`, `trainkit --help` and `trainkit stats` (on a small store made with `trainkit init` in a
temporary folder) as subprocesses, interleaved round after round so that noise on a shared machine hits every
command alike, and prints the median wall time of each and its ratio to `python -c pass`. It then runs each
command once more with an exit hook and reports which heavy optional modules (dspy, litellm, psycopg2, ...)
ended up imported.

    python benchmarks/cli_startup.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("dspy", "litellm", "psycopg2", "psycopg", "openai", "httpx", "pydantic")

# The console script `trainkit` does the same as this (import main, call it); -c is the fallback when the
# script is not next to the interpreter.
MAIN = "from dspy_trainkit.cli.main import main; main()"
PROBE = ("import atexit, os, sys\n"
         "def _report():\n"
         "    found = sorted({m.split('.')[0] for m in sys.modules} & set(os.environ['TK_HEAVY'].split(',')))\n"
         "    with open(os.environ['TK_REPORT'], 'w') as f:\n"
         "        f.write(','.join(found))\n"
         "atexit.register(_report)\n"
         + MAIN)


def trainkit_command() -> list[str]:
    script = Path(sys.executable).with_name("trainkit")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", MAIN]


def clean_env() -> dict[str, str]:
    """The environment without TRAINKIT_* settings that could point the commands elsewhere."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def imported_heavy(args: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    report = cwd / "modules.txt"
    probe_env = {**env, "TK_REPORT": str(report), "TK_HEAVY": ",".join(HEAVY)}
    subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, env=probe_env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    text = report.read_text()
    report.unlink()
    return text.split(",") if text else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="rounds of the three commands (default 15)")
    options = parser.parse_args()

    env = clean_env()
    trainkit = trainkit_command()
    with tempfile.TemporaryDirectory(prefix="trainkit-startup-") as tmp:
        cwd = Path(tmp)
        subprocess.run([*trainkit, "init", "--task", "qa", "--signature", "question -> answer"], cwd=cwd, env=env,
                       check=True, stdout=subprocess.DEVNULL)
        for n in range(3):
            subprocess.run([*trainkit, "add", "-t", "qa", "-i", f"question=what is {n}+{n}?",
                            "-o", f"answer={2 * n}", "--domain", "arithmetic", "--topic", "addition",
                            "--difficulty", "easy"], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "trainkit --help": [*trainkit, "--help"],
            "trainkit stats": [*trainkit, "stats"],
        }
        for argv in commands.values():  # warm the OS file cache and .pyc files
            run(argv, cwd, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(options.repeat):
            for name, argv in commands.items():
                times[name].append(run(argv, cwd, env))
        heavy = {name: imported_heavy(argv[len(trainkit):], cwd, env)
                 for name, argv in commands.items() if name != "python -c pass"}

    print(f"command: {' '.join(trainkit)}  ({options.repeat} interleaved rounds, wall time per run)")
    base = statistics.median(times["python -c pass"])
    print(f"{'':18} {'median':>9} {'min':>9} {'max':>9} {'x python -c pass':>17}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:18} {median * 1000:7.1f}ms {min(values) * 1000:7.1f}ms {max(values) * 1000:7.1f}ms "
              f"{median / base:16.2f}x")
    print()
    print(f"heavy modules imported (checked: {', '.join(HEAVY)}):")
    for name, found in heavy.items():
        print(f"  {name:16} {', '.join(found) if found else 'none'}")


if __name__ == "__main__":
    main()
