"""How long the `trainkit` command takes to start, against bare `python -c pass` measured in the same run.

Runs `python -c pass`, `trainkit --help` and `trainkit stats` (on a small store made with `trainkit init` in a
temporary folder; `stats` also with TRAINKIT_LAZY_PLUGINS=0, every plugin imported at start as before the plugin
hook table) as subprocesses, interleaved round after round so that noise on a shared machine hits every
command alike, and prints the median wall time of each and its ratio to `python -c pass`. It then runs each
command once more with an exit hook and reports which heavy optional modules (dspy, litellm, psycopg2, ...)
ended up imported.

    python benchmarks/cli_startup.py [--repeat 15] [--baseline-rev REV] [--baseline-script PATH] [--store PATH]

`trainkit` is this environment's console script (next to the interpreter), run as a user runs it, with the
default plugins (the project `trainkit init` writes disables none) and warm tables: the hook table, the
entry-point list and the help index in a cache folder of the run, written by the warm-up runs, as any second
start finds them.

With `--baseline-rev REV` (a git revision of this repository, e.g. the commit before a change), it also checks
that revision out into a temporary worktree and times its `trainkit --help` and `trainkit stats` in the same
rounds, so a change can be shown to make start-up no slower. Both revisions then run the same way: `python -S`
with the checkout, its plugins folder and this environment's site-packages on PYTHONPATH (no editable-install
hook), so only the code differs.

With `--store PATH` (a large SQLite store, e.g. one million examples made by `read_store.py`), it also times
`trainkit --db sqlite:///PATH stats` against a python script running the raw grouped query that yields the same
counts (`read_paths.py`'s raw stats script), in the same rounds, and prints raw time / trainkit time in wall and
CPU time: on a large store the command is its start-up plus a query as fast as the raw one. With
`--baseline-rev`, that revision's `stats` on the same store is timed too.

With `--baseline-script PATH` (another environment's installed `trainkit`, e.g. /work/main/.venv/bin/trainkit),
it also times that console script's `--help` and `stats`, and that environment's `python -c pass`, in the same
rounds: the before/after of the command as a user runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

HEAVY = ("dspy", "litellm", "psycopg2", "psycopg", "openai", "httpx", "pydantic", "peewee", "pluggy", "attrs",
         "tomllib")

# The console script `trainkit` does the same as this (import main, call it); -c is the fallback when the
# script is not next to the interpreter.
MAIN = "from dspy_trainkit.cli.entry import main; main()"
OLD_MAIN = "from dspy_trainkit.cli.main import main; main()"
# The raw grouped query of benchmarks/read_paths.py's stats row, as a whole script.
RAW_STATS = ("import sqlite3\ncon = sqlite3.connect({db!r})\n"
             "rows = con.execute('SELECT task, status, source, domain, topic, difficulty, COUNT(*) FROM examples "
             "GROUP BY 1, 2, 3, 4, 5, 6').fetchall()")
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
    """The environment without TRAINKIT_* settings that could point the commands elsewhere, and with byte-code
    caching on (PYTHONDONTWRITEBYTECODE removed): an installed trainkit runs from .pyc files, and compiling every
    module on every run measured the compiler, not the start-up."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_") and k != "PYTHONDONTWRITEBYTECODE"}


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run. The CPU time (user + system of the child) is shown beside the wall
    time because on a loaded machine it moves far less: waiting for a core is in the wall time only."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def imported_heavy(args: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    report = cwd / "modules.txt"
    probe_env = {**env, "TK_REPORT": str(report), "TK_HEAVY": ",".join(HEAVY)}
    for _ in range(2):  # the second run is warm: `python -c` has its own sys.path, so its own entry-point list
        subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, env=probe_env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    text = report.read_text()
    report.unlink()
    return text.split(",") if text else []


def checkout_command(checkout: Path) -> tuple[list[str], dict[str, str]]:
    """`trainkit` run from a source checkout with no install hook, and the environment that makes it work."""
    path = os.pathsep.join([str(checkout), str(checkout / "plugins"), sysconfig.get_paths()["purelib"]])
    main = MAIN if (checkout / "dspy_trainkit" / "cli" / "entry.py").exists() else OLD_MAIN  # before cli/entry.py
    return [sys.executable, "-S", "-c", main], {**clean_env(), "PYTHONPATH": path}


@contextlib.contextmanager
def worktree(rev: str):
    """A temporary git worktree of `rev` of this repository, removed afterwards."""
    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="trainkit-baseline-") as tmp:
        target = Path(tmp) / "checkout"
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(target), rev], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield target
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(target)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="rounds of the three commands (default 15)")
    parser.add_argument("--baseline-rev", help="also time `trainkit --help` of this git revision, same rounds")
    parser.add_argument("--disable-plugins", default="", metavar="A,B",
                        help="with --baseline-rev: disable these plugins on both sides, to compare the same plugin "
                             "set when this checkout ships plugins the baseline did not")
    parser.add_argument("--baseline-script", metavar="PATH",
                        help="also time this installed `trainkit` console script (another environment), same rounds")
    parser.add_argument("--store", type=Path, metavar="PATH",
                        help="also time `trainkit stats` on this SQLite store against the raw grouped query")
    options = parser.parse_args()
    with contextlib.ExitStack() as stack:
        baseline = stack.enter_context(worktree(options.baseline_rev)) if options.baseline_rev else None
        measure(options, baseline)


def measure(options: argparse.Namespace, baseline: Path | None) -> None:

    trainkit = trainkit_command()
    with tempfile.TemporaryDirectory(prefix="trainkit-startup-") as tmp:
        cwd = Path(tmp)
        env = {**clean_env(), "TRAINKIT_CACHE_DIR": str(cwd / "cache")}  # the plugin hook table, warmed below
        subprocess.run([*trainkit, "init", "--task", "qa", "--signature", "question -> answer"], cwd=cwd, env=env,
                       check=True, stdout=subprocess.DEVNULL)
        for n in range(3):
            subprocess.run([*trainkit, "add", "-t", "qa", "-i", f"question=what is {n}+{n}?",
                            "-o", f"answer={2 * n}", "--domain", "arithmetic", "--topic", "addition",
                            "--difficulty", "easy"], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
        commands = {
            "python -c pass": ([sys.executable, "-c", "pass"], env),
            "trainkit --help": ([*trainkit, "--help"], env),
            "trainkit stats": ([*trainkit, "stats"], env),
            "trainkit stats (eager plugins)": ([*trainkit, "stats"], {**env, "TRAINKIT_LAZY_PLUGINS": "0"}),
        }
        if baseline is not None:
            here, here_env = checkout_command(Path(__file__).resolve().parent.parent)
            then, then_env = checkout_command(baseline)
            if options.disable_plugins:
                here_env["TRAINKIT_DISABLE_PLUGINS"] = then_env["TRAINKIT_DISABLE_PLUGINS"] = options.disable_plugins
            # each checkout its own tables (hook table, entry-point list, help index): one interpreter, one file name
            here_env["TRAINKIT_CACHE_DIR"] = env["TRAINKIT_CACHE_DIR"]
            then_env["TRAINKIT_CACHE_DIR"] = str(cwd / "cache-baseline")
            commands["--help (this checkout, -S)"] = ([*here, "--help"], here_env)
            commands[f"--help ({options.baseline_rev}, -S)"] = ([*then, "--help"], then_env)
            commands["stats (this checkout, -S)"] = ([*here, "stats"], here_env)
            commands[f"stats ({options.baseline_rev}, -S)"] = ([*then, "stats"], then_env)
        if options.store:
            store = str(options.store.resolve())
            commands["raw grouped query (store)"] = ([sys.executable, "-c", RAW_STATS.format(db=store)], env)
            commands["trainkit stats (store)"] = ([*trainkit, "--db", f"sqlite:///{store}", "stats"], env)
            if baseline is not None:
                commands[f"stats (store, {options.baseline_rev}, -S)"] = (
                    [*then, "--db", f"sqlite:///{store}", "stats"], then_env)
        if options.baseline_script:
            script = Path(options.baseline_script)
            script_env = {**env, "TRAINKIT_CACHE_DIR": str(cwd / "cache-script")}
            commands["python -c pass (baseline env)"] = ([str(script.with_name("python")), "-c", "pass"], script_env)
            commands["--help (baseline script)"] = ([str(script), "--help"], script_env)
            commands["stats (baseline script)"] = ([str(script), "stats"], script_env)
        for _ in range(2):  # warm the OS file cache, .pyc files and each side's tables (written by the first run)
            for argv, argv_env in commands.values():
                run(argv, cwd, argv_env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(options.repeat):
            for name, (argv, argv_env) in commands.items():
                wall, used = run(argv, cwd, argv_env)
                times[name].append(wall)
                cpu[name].append(used)
        heavy = {name: imported_heavy(argv[len(trainkit):], cwd, env)
                 for name, (argv, _) in commands.items() if name in ("trainkit --help", "trainkit stats")}

    print(f"command: {' '.join(trainkit)}  ({options.repeat} interleaved rounds, wall time per run)")
    base = statistics.median(times["python -c pass"])
    print(f"{'':32} {'median':>9} {'min':>9} {'max':>9} {'x python -c pass':>17}   (median CPU time ratio)")
    cpu_base = statistics.median(cpu["python -c pass"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:32} {median * 1000:7.1f}ms {min(values) * 1000:7.1f}ms {max(values) * 1000:7.1f}ms "
              f"{median / base:16.2f}x   cpu {statistics.median(cpu[name]) / cpu_base:5.2f}x")
    if baseline is not None:
        now = statistics.median(times["--help (this checkout, -S)"])
        then = statistics.median(times[f"--help ({options.baseline_rev}, -S)"])
        print(f"\n--help, this checkout against {options.baseline_rev}: {then / now:.2f} (baseline time / this time; "
              ">= 1 means no slower)")
        now = statistics.median(times["stats (this checkout, -S)"])
        then = statistics.median(times[f"stats ({options.baseline_rev}, -S)"])
        print(f"stats, this checkout against {options.baseline_rev}: {then / now:.2f} (baseline time / this time)")
    if options.store:
        raw, raw_cpu = statistics.median(times["raw grouped query (store)"]), statistics.median(
            cpu["raw grouped query (store)"])
        for name in [n for n in times if n.startswith(("trainkit stats (store)", "stats (store,"))]:
            print(f"{name} against the raw grouped query: {raw / statistics.median(times[name]):.2f} wall, "
                  f"{raw_cpu / statistics.median(cpu[name]):.2f} CPU (raw time / trainkit time)")
    if options.baseline_script:
        script_base = statistics.median(times["python -c pass (baseline env)"])
        pairs = (("--help (baseline script)", "trainkit --help"), ("stats (baseline script)", "trainkit stats"))
        for name, mine in pairs:
            then = statistics.median(times[name])
            speedup = then / statistics.median(times[mine])
            print(f"{name}: {then / script_base:.2f}x its python -c pass; this script {speedup:.2f} times faster")
    print()
    print(f"heavy modules imported (checked: {', '.join(HEAVY)}):")
    for name, found in heavy.items():
        print(f"  {name:16} {', '.join(found) if found else 'none'}")


if __name__ == "__main__":
    main()
