"""Restore under kill -9: how many killed restores leave the target store intact (empty, so the same restore can
simply run again, or complete when the kill came after the commit).

A portable backup of --rows examples (plus their events) is made once. Each run starts `trainkit restore` in a
subprocess on a fresh, initialised store, waits until the backup is verified and unpacked (its members are in
the restore's temporary folder: the load begins), then a random part of the load's length (0 to 90%, as the
timing run measured it); it kills the process with SIGKILL and looks at the target: intact means it holds
nothing (or everything). An empty store must then take
the same restore completely. Prints `intact N / runs M`, how many kills landed mid-load, and the re-runs.

    python benchmarks/restore_kill.py [--rows 50000] [--runs 10] [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

QUIET = ("lengths", "consistency", "pii", "neardup", "coherence", "relevance", "accuracy", "llm_judge")


def trainkit(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run the CLI in `cwd` (a scratch folder: `init` writes its trainkit.toml there)."""
    command = [sys.executable, "-m", "dspy_trainkit", *[f"--disable-plugin={p}" for p in QUIET], *args]
    return subprocess.run(command, capture_output=True, text=True, check=check, cwd=cwd)


def make_backup(folder: Path, rows: int) -> Path:
    import dspy_trainkit as tk

    url = f"sqlite:///{folder / 'source.db'}"
    with tk.open(url, disable=QUIET) as kit:
        kit.add_many([{"task": "qa", "inputs": {"question": f"question {i} {uuid.uuid4().hex}"},
                       "outputs": {"answer": str(i)}} for i in range(rows)])
        path = folder / "backup.tgz"
        kit.backup(path, portable=True)
    return path


def target_url(backend: str, folder: Path, n: int) -> tuple[str, object]:
    if backend == "sqlite":
        return f"sqlite:///{folder / f'target{n}.db'}", None
    import psycopg2

    base = os.environ["TRAINKIT_TEST_POSTGRES_URL"]
    schema = f"tk_bench_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(base)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    return f"{base}?options=-c%20search_path%3D{schema}", (conn, schema)


def start_restore(url: str, backup: Path, tmp: Path) -> tuple[subprocess.Popen, float]:
    """Start a restore whose temporary folder is under `tmp`; returns it once its load begins, and when."""
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen([sys.executable, "-m", "dspy_trainkit", *[f"--disable-plugin={p}" for p in QUIET],
                             "--db", url, "restore", str(backup), "-q"], env=env, cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and not list(tmp.glob("trainkit-restore-*/plans.jsonl.data")):
        time.sleep(0.005)
    return proc, time.perf_counter()


def drop(schema: object) -> None:
    """Drop a PostgreSQL schema `target_url` made (None for SQLite)."""
    if schema is None:
        return
    conn, name = schema  # type: ignore[misc]
    with conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA {name} CASCADE")
    conn.close()


def counts(url: str) -> dict[str, int]:
    import dspy_trainkit as tk

    with tk.open(url, disable=QUIET) as kit:
        return {"examples": kit.count(status=None), "events": sum(1 for _ in kit.events())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        backup = make_backup(folder, args.rows)
        manifest = json.loads(trainkit("--db", f"sqlite:///{folder / 'probe.db'}", "restore", str(backup),
                                       "--json", "-q", cwd=folder).stdout)
        want = {"examples": manifest["counts"]["examples"], "events": manifest["counts"]["events"]}
        timing, timing_schema = target_url(args.backend, folder, -1)
        trainkit("--db", timing, "init", cwd=folder)
        proc, begun = start_restore(timing, backup, folder / "tmp-timing")
        proc.wait()
        load = time.perf_counter() - begun
        drop(timing_schema)
        print(f"backup of {want['examples']} examples, {want['events']} events; its load takes {load:.1f}s")
        intact = rerun_ok = mid_load = 0
        for n in range(args.runs):
            url, cleanup = target_url(args.backend, folder, n)
            trainkit("--db", url, "init", "--force", cwd=folder)
            proc, begun = start_restore(url, backup, folder / f"tmp{n}")
            time.sleep(rng.uniform(0.0, 0.9) * load)
            was_running = proc.poll() is None
            killed_at = time.perf_counter() - begun
            if was_running:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            after = counts(url)
            ok = after == {"examples": 0, "events": 0} or after == want
            intact += ok
            mid_load += was_running and after != want
            if after == want:
                rerun_ok += 1
                outcome = "finished before the kill"
            else:
                again = trainkit("--db", url, "restore", str(backup), "-q", cwd=folder, check=False)
                done = again.returncode == 0 and counts(url) == want
                rerun_ok += done
                outcome = "re-run ok" if done else f"re-run FAILED: {again.stderr.strip()}"
            print(f"run {n + 1}: killed {killed_at:.2f}s into the load, store held {after} -> "
                  f"{'intact' if ok else 'PARTIAL'}; {outcome}")
            drop(cleanup)
        print(f"intact {intact} / runs {args.runs} ({mid_load} killed mid-load); complete after a re-run "
              f"{rerun_ok} / {args.runs}")


if __name__ == "__main__":
    main()
