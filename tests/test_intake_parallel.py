"""Parallel judging (`intake.workers`) stores exactly what the serial path stores, with the same audit events.

One import with exact duplicates (within a batch, across batches, of stored examples), near-duplicates (of stored
examples, within a batch, across batches), invalid records (unparseable line, no task, a NaN), rejected records
(near-duplicates, low quality) and the coherence length norm in effect (read from examples stored before), cut
into batches of 7, runs once serially and once with 2 workers, into two fresh stores of the same backend. What
differs by nature is left out: example and event ids (random; ids inside findings and events are replaced by the
content hash of the example they name) and the times.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import dspy_trainkit as tk
from dspy_trainkit.errors import TrainkitError
from dspy_trainkit.intake_parallel import worker_count

CONFIG = """
[intake]
batch_size = 7

[plugin.coherence]
length_min_examples = 5

[tasks.qa]
min_quality = 0.7
"""

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec "
         "romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def _answer(n: int, length: int = 24) -> str:
    """A distinct sentence per n (different word sets: far from each other)."""
    chosen = [f"{WORDS[(n * 7 + i * 3) % len(WORDS)]}{n}x{i}" for i in range(length)]
    return " ".join(chosen) + "."


def _lines() -> list[str]:
    records: list[Any] = []
    for n in range(40):
        records.append({"task": "qa", "inputs": {"question": f"question {n}?"}, "outputs": {"answer": _answer(n)}})
        if n % 6 == 1:  # exact duplicate, in the same batch or the next
            records.append(dict(records[-1]))
        if n % 5 == 2:  # near-duplicate of the record before (one word changed): rejected by neardup
            near = _answer(n).replace(f"x{3}", "x3z", 1)
            records.append({"task": "qa", "inputs": {"question": f"question {n}?"}, "outputs": {"answer": near}})
        if n % 9 == 4:
            records.append({"inputs": {"question": "no task"}, "outputs": {"answer": "x"}, "task": ""})
        if n % 11 == 3:
            records.append("not json at all")
        if n % 8 == 5:  # repetitive: low coherence, below min_quality 0.7
            records.append({"task": "qa", "inputs": {"question": f"repeat {n}?"},
                            "outputs": {"answer": "the same thing again " * 12}})
        if n % 10 == 7:  # far longer than the stored norm: length part low
            records.append({"task": "qa", "inputs": {"question": f"long {n}?"},
                            "outputs": {"answer": " ".join(_answer(1000 + n + k) for k in range(30))}})
    records.append({"task": "qa", "inputs": {"question": "stored 0?"}, "outputs": {"answer": _answer(500)}})
    records.append({"task": "qa", "inputs": {"question": "near stored 1?"},
                    "outputs": {"answer": _answer(501).replace("x5", "x5q", 1)}})
    records.append({"task": "qa", "inputs": {"question": "nan"}, "outputs": {"answer": float("nan")}})
    return [r if isinstance(r, str) else json.dumps(r) for r in records]


def _seed(kit: tk.Kit) -> None:
    """Accepted examples stored before the import: the coherence norm, and targets of duplicates."""
    kit.add_many([{"task": "qa", "inputs": {"question": f"stored {n}?"}, "outputs": {"answer": _answer(500 + n)}}
                  for n in range(8)])


def _snapshot(kit: tk.Kit) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    examples = list(kit.store.iter_examples(tk.ExampleQuery()))
    hashes = {ex.id: ex.content_hash for ex in examples}
    pattern = re.compile("|".join(map(re.escape, hashes)) or "$^")

    def named(value: Any) -> Any:  # ids (random) replaced by the content hash of the example they name
        return json.loads(pattern.sub(lambda m: hashes[m.group(0)], json.dumps(value, sort_keys=True)))

    stored = []
    for ex in examples:
        data = ex.to_dict()
        for key in ("id", "created_at", "updated_at", "last_used_at"):
            data.pop(key)
        stored.append(named(data))
    stored.sort(key=lambda d: d["content_hash"])
    events = [named({"kind": e.kind, "actor": e.actor, "reason": e.reason, "details": e.details,
                     "examples": sorted(hashes[i] for i in e.example_ids)}) for e in kit.store.iter_events()]
    return stored, events


@pytest.fixture
def store_pair(store_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two fresh stores of the backend: for PostgreSQL a second schema beside the fixture's."""
    if store_url.startswith("sqlite"):
        yield store_url, f"sqlite:///{tmp_path / 'second.db'}"
        return
    import psycopg2

    schema = f"tk_parallel_{uuid.uuid4().hex[:12]}"
    base = store_url.split("?")[0]
    conn = psycopg2.connect(base)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    try:
        yield store_url, f"{base}?options=-c%20search_path%3D{schema}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


def _import(url: str, config: Path, data: Path, workers: int, made_here: list[set[str]]) -> tuple[Any, Any]:
    settings = attrs.evolve(tk.load_settings(config), intake_workers=workers)
    with tk.open(url, settings=settings) as kit:
        _seed(kit)  # (a kit reads the coherence norm once: the import's kit must be opened after this)
    with tk.open(url, settings=settings) as kit:
        made_here.clear()
        report = kit.import_files([data])
        counts = {name: {k: len(v) if k == "ids" else v for k, v in file.items()}  # ids are random
                  for name, file in report.to_dict()["files"].items()}
        return counts, _snapshot(kit)


def test_two_workers_store_what_the_serial_path_stores(store_pair: tuple[str, str], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from dspy_trainkit import assessment
    from dspy_trainkit.plugin_manager import hook_impls

    made_here: list[set[str]] = []  # per call of assessment.prepare in this process: the plugins it ran here
    original = assessment.prepare

    def prepare(kit: Any, examples: Any, prepared: Any = None) -> Any:
        made_here.append({i.plugin_name for i in hook_impls(kit.pm, "prepare")} - set(prepared or {}))
        return original(kit, examples, prepared)

    monkeypatch.setattr(assessment, "prepare", prepare)
    config = tmp_path / "trainkit.toml"
    config.write_text(CONFIG)
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(_lines()) + "\n")
    serial_report, (serial_examples, serial_events) = _import(store_pair[0], config, data, 0, made_here)
    assert {"neardup", "coherence"} <= set().union(*made_here)  # serial: prepared in this process
    parallel_report, (parallel_examples, parallel_events) = _import(store_pair[1], config, data, 2, made_here)
    assert made_here and set().union(*made_here) == set()  # parallel: every batch prepared by a worker

    statuses = {ex["status"] for ex in serial_examples}
    codes = {f["code"] for ex in serial_examples for f in ex["findings"]}
    assert statuses == {"accepted", "rejected"}, statuses  # the data covers what it should
    assert {"near-duplicate", "below-threshold"} <= codes, codes
    long = [ex for ex in serial_examples if ex["inputs"]["question"].startswith("long")]
    assert long and all(ex["scores"]["coherence"] < 0.9 for ex in long)  # the length norm is in effect
    assert serial_report[str(data)]["duplicates"] >= 8
    assert serial_report[str(data)]["invalid"] >= 6
    assert sum(e["kind"] == "added" for e in serial_events) >= 6  # several batches

    assert parallel_examples == serial_examples
    assert parallel_events == serial_events
    assert parallel_report == serial_report


def test_worker_count() -> None:
    assert worker_count(0) == 0
    assert worker_count(3) == 3
    assert 0 <= worker_count("auto") <= 4
    with pytest.raises(TrainkitError):
        worker_count(-1)


def test_a_dead_worker_is_one_error_naming_the_batch_and_the_batches_before_stay(tmp_path: Path) -> None:
    """A worker killed mid-import: one error naming the batch, the batches before it stored, no process left
    behind, and a re-run stores the rest (the stored part is found by content hash)."""
    import multiprocessing
    import os
    import signal

    config = tmp_path / "trainkit.toml"
    config.write_text(CONFIG)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"task": "qa", "inputs": {"q": f"q{n}"}, "outputs": {"a": _answer(n)}}) + "\n"
                            for n in range(70)))
    settings = attrs.evolve(tk.load_settings(config), intake_workers=1)

    def kill_workers(name: str, report: Any) -> None:
        if report.read == 14:  # after the second batch is written
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)

    with tk.open(f"sqlite:///{tmp_path / 's.db'}", settings=settings) as kit:
        with pytest.raises(TrainkitError, match=r"worker process died while preparing batch (\d+) \(") as caught:
            kit.import_files([data], progress=kill_workers)
        batch = int(re.search(r"batch (\d+)", str(caught.value)).group(1))
        assert batch >= 3
        assert kit.store.count(tk.ExampleQuery()) == 7 * (batch - 1)
        assert multiprocessing.active_children() == []
        again = kit.import_files([data])
        assert again.imported == 70 - 7 * (batch - 1)
        assert again.duplicates == 7 * (batch - 1)
        assert kit.store.count(tk.ExampleQuery()) == 70


def test_an_error_in_a_worker_names_the_batch_and_keeps_its_kind() -> None:
    from concurrent.futures import Future

    from dspy_trainkit.intake_parallel import _write

    future: Future[Any] = Future()
    future.set_result(("error", "PluginError", "plugin 'x' failed in hook 'prepare'", "x", "prepare"))
    with pytest.raises(tk.PluginError, match=r"batch 4 \(f:line 1 to f:line 2\): plugin 'x'") as caught:
        _write(None, 4, [("f:line 1", {}), ("f:line 2", {})], future, None)  # type: ignore[arg-type]
    assert (caught.value.plugin, caught.value.hook) == ("x", "prepare")


@pytest.mark.parametrize("value", [-1, "many", 1.5, True, 65, 99999999999999999999])
def test_a_bad_workers_setting_is_a_config_error(tmp_path: Path, value: Any) -> None:
    config = tmp_path / "trainkit.toml"
    config.write_text(f"[intake]\nworkers = {json.dumps(value)}\n")
    with pytest.raises(tk.ConfigError, match=r"intake\.workers"):
        tk.load_settings(config)


def test_the_workers_setting_is_read(tmp_path: Path) -> None:
    config = tmp_path / "trainkit.toml"
    config.write_text('[intake]\nworkers = "auto"\n')
    assert tk.load_settings(config).intake_workers == "auto"
    config.write_text("[intake]\nworkers = 3\n")
    assert tk.load_settings(config).intake_workers == 3


def test_cli_import_with_workers_prints_what_the_serial_import_prints(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dspy_trainkit.cli.main import cli

    (tmp_path / "trainkit.toml").write_text(CONFIG)
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(_lines()) + "\n")
    outputs = []
    for workers, db in (("0", "a.db"), ("2", "b.db")):
        tk.open(f"sqlite:///{tmp_path / db}").close()
        result = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path / db}", "import", str(data), "--workers",
                                          workers, "-q"])
        assert result.exit_code == 3, result.output  # some records rejected
        outputs.append(re.sub(r"\b[0-9a-f]{32}\b", "ID", result.output))  # example ids are random
    assert outputs[0] == outputs[1]
    for value in ("x", "99999999999999999999", "65", "\u00b2", "\u0661", "9" * 5000):  # digits of other scripts;
        # a number too long for Python's int()
        bad = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path / 'a.db'}", "import", str(data), "--workers",
                                       value])
        assert bad.exit_code == 2 and "--workers: expected a whole number from 0 to 64" in bad.output, bad.output


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _marked_env() -> tuple[str, dict[str, str]]:
    """A marker to find an import and its workers by (`_processes_with`), and the environment that carries it
    (without the caller's TRAINKIT_ settings)."""
    import os

    marker = f"TRAINKIT_TEST_MARK={uuid.uuid4().hex}"
    name, value = marker.split("=")
    return marker, {**{k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}, name: value}


def _stored(db: Path) -> int:
    """Examples in the SQLite store at `db`, read while an import writes it."""
    import sqlite3

    connection = sqlite3.connect(db, timeout=30)
    try:
        return connection.execute("SELECT count(*) FROM examples").fetchone()[0]
    finally:
        connection.close()


def _processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds `marker` (the import and its workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize(("signum", "status", "workers"), [("SIGINT", 130, "2"), ("SIGTERM", 130, "2"),
                                                            ("SIGTERM", 130, "0"), ("SIGINT twice", 130, "2"),
                                                            ("SIGINT, a worker stopped", 130, "2"),
                                                            ("SIGINT before a batch is stored", 130, "2")])
def test_a_signal_keeps_the_committed_batches_and_leaves_no_worker(tmp_path: Path, signum: str, status: int,
                                                                    workers: str) -> None:
    """Ctrl-C or SIGTERM mid-import, with workers or serial: exit 130 saying what is kept, whole batches
    committed, the rejects file written (not left as a temporary file), no worker left; a re-run finishes.
    Ctrl-C pressed twice in quick succession, or with a worker stopped (SIGSTOP), used to leave the import
    waiting for a worker forever."""
    import os
    import signal
    import subprocess
    import sys
    import time

    n, batch = 20_000, 200
    (tmp_path / "trainkit.toml").write_text(f"[intake]\nbatch_size = {batch}\n")
    data = tmp_path / "data.jsonl"
    # before any batch is stored, the batches handed to the workers must outgrow the pipe to them (its feeder
    # thread then blocks on it): long answers
    answer = "answer {} " + ("with more words " * 40 if "before" in signum else "")
    data.write_text("{not json\n" + "".join(json.dumps({"task": "qa", "inputs": {"q": f"q{i}"},
                                                        "outputs": {"a": answer.format(i)}}) + "\n" for i in range(n)))
    db = tmp_path / "trainkit.db"
    tk.open(f"sqlite:///{db}").close()
    marker, env = _marked_env()
    command = [sys.executable, "-m", "dspy_trainkit", "--db", f"sqlite:///{db}", "import", str(data), "--workers",
               workers, "-q", "--rejects", str(tmp_path / "rejects.jsonl")]

    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)  # its own process group, as a terminal's Ctrl-C reaches
    stopped: list[int] = []
    try:
        while process.poll() is None and (
                len([p for p in _processes_with(marker) if b"spawn_main" in _cmdline(p)]) < 2 if "before" in signum
                else _stored(db) < 3 * batch):
            time.sleep(0.01)
        if "stopped" in signum:
            stopped = [pid for pid in _processes_with(marker) if pid != process.pid  # a worker, not the
                       and b"spawn_main" in _cmdline(pid)][:1]  # resource tracker
            assert stopped, "no worker process found"
            os.kill(stopped[0], signal.SIGSTOP)
        os.killpg(process.pid, getattr(signal, signum.split()[0].rstrip(",")))
        if "twice" in signum:
            time.sleep(0.05)
            os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    # a second Ctrl-C may end the process by the signal itself (the shell's 130 too) instead of exit(130)
    assert process.returncode in ((status, -signal.SIGINT) if "twice" in signum else (status,)), err.decode()
    assert "interrupted" in err.decode() and "Traceback" not in err.decode(), err.decode()
    if "before" not in signum:  # the bad line is in the first batch, which an early Ctrl-C never judges
        assert "not json" in (tmp_path / "rejects.jsonl").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    for _ in range(200):  # the workers leave with the writer (at once, or within their parent watch's period)
        if not _processes_with(marker):
            break
        time.sleep(0.05)
    assert _processes_with(marker) == []
    partial = _stored(db)
    assert partial < n and (partial == 0 if "before" in signum else (partial + 1) % batch == 0)  # whole batches
    # (the first holds the bad line)
    rerun = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 3, rerun.stderr  # finished, with the bad line rejected again
    assert _stored(db) == n


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_a_worker_the_pool_starts_late_is_born_with_ctrl_c_held_too(tmp_path: Path) -> None:
    """The pool starts a worker only when a batch finds none idle: from a slow pipe, the second one starts at the
    fourth batch. Only the first submits held Ctrl-C back, so a Ctrl-C then reached that worker mid-start-up and
    it printed a traceback (a stranger's finding): every worker must be born with SIGINT blocked."""
    import subprocess
    import sys
    import time

    batch = 50
    (tmp_path / "trainkit.toml").write_text(f"[intake]\nbatch_size = {batch}\n")
    db = tmp_path / "trainkit.db"
    tk.open(f"sqlite:///{db}").close()
    marker, env = _marked_env()
    process = subprocess.Popen([sys.executable, "-m", "dspy_trainkit", "--db", f"sqlite:///{db}", "import", "-",
                                "--format", "jsonl", "--task", "qa", "--workers", "2", "-q"], cwd=tmp_path, env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def send(first: int, count: int) -> None:
        process.stdin.write("".join(json.dumps({"inputs": {"q": f"question {i}"}, "outputs": {"a": f"answer {i}"}})
                                    + "\n" for i in range(first, first + count)).encode())
        process.stdin.flush()

    def workers() -> list[int]:
        return [pid for pid in _processes_with(marker) if b"spawn_main" in _cmdline(pid)]

    def cpu(pid: int) -> str:
        return " ".join(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13])

    def wait_idle() -> None:
        """Until there is a worker and it has used no CPU for half a second (its batch is done)."""
        deadline, last = time.monotonic() + 60, None
        while process.poll() is None and time.monotonic() < deadline:
            found = workers()
            now = cpu(found[0]) if found else None
            if now is not None and now == last:
                return
            last = now
            time.sleep(0.5)

    try:
        send(0, batch + 1)  # the one more makes the reader hand batch 1 over
        wait_idle()
        send(batch + 1, batch)  # batch 2, to the idle worker
        wait_idle()
        send(2 * batch + 1, 2 * batch)  # batches 3 and 4 at once: the one worker is busy, the pool starts another
        deadline = time.monotonic() + 60
        while len(workers()) < 2 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        found = workers()
        assert found and process.poll() is None
        # with the timing as planned the second worker starts late; if the machine made it start early, it
        # must have been born with Ctrl-C held all the same
        for pid in found:
            status = Path(f"/proc/{pid}/status").read_text()
            blocked = int(next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16)
            assert blocked & (1 << 1), f"worker {pid} was born with Ctrl-C unblocked"  # SIGINT is signal 2
        _, err = process.communicate(timeout=120)  # closes the input: the import ends
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err.decode()
    assert _stored(db) == 4 * batch + 1


def _sleep(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


def test_ending_the_workers_waits_for_the_pools_manager_thread() -> None:
    """At exit Python 3.11 wakes each process pool's manager thread through a pipe that the thread closes as it
    ends; an import that ended its workers without waiting for the thread raced it, and printed "Exception
    ignored ... Bad file descriptor" after Ctrl-C now and then (a stranger's finding; 3 runs in 5 from a slow
    pipe). The thread was looked up after `shutdown`, which forgets it, so it was never waited for."""
    import multiprocessing
    import time
    from concurrent.futures import ProcessPoolExecutor

    from dspy_trainkit.intake_parallel import _end_workers

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    future = pool.submit(_sleep, 30)
    manager = pool._executor_manager_thread
    deadline = time.monotonic() + 60
    while not future.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    _end_workers(pool)
    assert not manager.is_alive()
    with pytest.raises(Exception, match="terminated abruptly"):
        future.result(timeout=30)


def test_a_dry_run_with_workers_counts_what_the_serial_dry_run_counts(tmp_path: Path) -> None:
    config = tmp_path / "trainkit.toml"
    config.write_text(CONFIG)
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(_lines()) + "\n")
    reports = []
    for workers in (0, 1):
        settings = attrs.evolve(tk.load_settings(config), intake_workers=workers)
        with tk.open(f"sqlite:///{tmp_path / f'dry{workers}.db'}", settings=settings) as kit:
            report = kit.import_files([data], dry_run=True).files[str(data)]
            assert kit.store.count(tk.ExampleQuery()) == 0
            reports.append({k: len(v) if k == "ids" else v for k, v in report.to_dict().items()})
    assert reports[0]["duplicates"] >= 5 and reports[0]["rejected"] >= 3
    assert reports[1] == reports[0]


def test_a_record_too_deep_to_send_to_a_worker_is_judged_by_the_writer_as_serial_judges_it(tmp_path: Path) -> None:
    """A record nested hundreds of levels deep cannot be pickled to a worker (RecursionError): its batch is
    judged in the writer, so the import ends as the serial one does (the deep record refused, the rest stored)."""
    config = tmp_path / "trainkit.toml"
    config.write_text(CONFIG)
    deep: Any = "x"
    for _ in range(900):
        deep = [deep]
    data = tmp_path / "deep.jsonl"
    data.write_text("".join(json.dumps(record) + "\n" for record in (
        {"task": "qa", "inputs": {"q": "first"}, "outputs": {"a": _answer(1)}},
        {"task": "qa", "inputs": {"q": deep}, "outputs": {"a": "b"}},
        {"task": "qa", "inputs": {"q": "third"}, "outputs": {"a": _answer(3)}})))
    reports = []
    for workers, db in ((0, "serial.db"), (2, "parallel.db")):
        settings = attrs.evolve(tk.load_settings(config), intake_workers=workers)
        with tk.open(f"sqlite:///{tmp_path / db}", settings=settings) as kit:
            report = kit.import_files([data])
            reports.append((report.imported, report.total("invalid"),
                            [p.message for r in report.files.values() for p in r.problems],
                            kit.store.count(tk.ExampleQuery())))
    assert reports[0] == reports[1]
    assert reports[1][0] == 2 and reports[1][1] == 1 and reports[1][3] == 2


def test_a_pool_broken_before_a_batch_is_handed_over_is_one_error_naming_that_batch() -> None:
    from concurrent.futures.process import BrokenProcessPool

    from dspy_trainkit.intake_parallel import _submit, _write

    class BrokenPool:
        def submit(self, *args: Any) -> Any:
            raise BrokenProcessPool("a child process terminated abruptly")

    future = _submit(BrokenPool(), [{}], {})
    with pytest.raises(TrainkitError, match=r"worker process died while preparing batch 5 \(f:line 9 to f:line 9\)"):
        _write(None, 5, [("f:line 9", {})], future, None)  # type: ignore[arg-type]


def test_a_script_without_a_main_guard_is_told_what_to_do(tmp_path: Path) -> None:
    """Each `spawn` worker imports the user's script again: without `if __name__ == "__main__":` the workers of
    the first batch die, and the error says why instead of only that one died."""
    import subprocess
    import sys

    (tmp_path / "trainkit.toml").write_text('[intake]\nworkers = 2\nbatch_size = 50\n'
                                            '[tasks.qa]\nsignature = "question -> answer"\n')
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"question": f"q{i}", "answer": "a"}) + "\n"
                                              for i in range(300)))
    (tmp_path / "noguard.py").write_text('import dspy_trainkit as tk\nwith tk.open("sqlite:///g.db") as kit:\n'
                                         '    kit.import_files(["d.jsonl"], task="qa")\n')
    run = subprocess.run([sys.executable, "noguard.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "a worker process died while preparing batch 1" in run.stderr
    assert "keep the script's work under `if __name__ == '__main__':`" in run.stderr


def test_a_number_too_long_for_python_in_the_settings_is_a_config_error(tmp_path: Path) -> None:
    """tomllib raises ValueError (not TOMLDecodeError) for an integer of more than 4300 digits: it was a
    traceback."""
    config = tmp_path / "trainkit.toml"
    config.write_text("[intake]\nworkers = " + "9" * 5000 + "\n")
    with pytest.raises(tk.ConfigError, match=r"trainkit\.toml: cannot read a value: Exceeds the limit"):
        tk.load_settings(config)
