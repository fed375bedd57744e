"""Collected records are not lost when the process gets SIGTERM or a spill file cannot be written, and the
DSPy callback can be added beside callbacks another library installed."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import dspy_trainkit as tk
from dspy_trainkit import collection

CONFIG = """
[tasks.qa]
signature = "question -> answer"

[intake]
batch_size = BATCH
"""

# A pipeline that collects N records much faster than a slow validator lets the writer store them, then
# waits to be stopped. It prints its collector's stats when it gets to exit normally (it should not).
PIPELINE = r"""
import sys, time
import dspy_trainkit as tk

class SlowValidator:
    @tk.hookimpl
    def validate(self, examples, context):
        time.sleep(0.2)

project, n = sys.argv[1], int(sys.argv[2])
kit = tk.open(config=f"{project}/trainkit.toml", plugins=[("slow", SlowValidator())])
kit.collection.sigterm_timeout = float(sys.argv[3])
for i in range(n):
    assert kit.collect("qa", {"question": f"question {i}"}, {"answer": "a"})
print("collected", flush=True)
time.sleep(600)
"""


def spilled_questions(project: Path) -> list[str]:
    return [orjson.loads(line)["inputs"]["question"]
            for path in sorted((project / ".trainkit").glob("collect-failed-*.jsonl"))
            for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("count, batch", [(1_200, 100), (20_000, 1000)])
def test_sigterm_while_the_writer_is_behind_loses_nothing(tmp_path: Path, count: int, batch: int) -> None:
    (tmp_path / "trainkit.toml").write_text(CONFIG.replace("BATCH", str(batch)), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-c", PIPELINE, str(tmp_path), str(count), "0.5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "collected"
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "received SIGTERM" in err and "Traceback" not in err

    with tk.open(f"sqlite:///{tmp_path / 'trainkit.db'}", create=False) as kit:
        stored = {ex.inputs["question"] for ex in kit.examples(task="qa")}
    spilled = spilled_questions(tmp_path)
    assert stored | set(spilled) == {f"question {i}" for i in range(count)}  # 0 lost
    assert len(spilled) >= count - len(stored)
    assert spilled, "the writer was behind: some records must have been spilled"


def test_sigterm_calls_the_handler_the_pipeline_installed(tmp_path: Path) -> None:
    (tmp_path / "trainkit.toml").write_text(CONFIG.replace("BATCH", "1000"), encoding="utf-8")
    script = r"""
import signal, sys, time
import dspy_trainkit as tk
stop = []
signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))  # a graceful-stop flag
with tk.open(config=sys.argv[1] + "/trainkit.toml") as kit:
    for i in range(50):
        kit.collect("qa", {"question": f"question {i}"}, {"answer": "a"})
    print("collected", flush=True)
    while not stop:
        time.sleep(0.01)
    print("stopping gracefully", kit.collection.terminating, flush=True)
"""
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "collected"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip() == "stopping gracefully True"
    with tk.open(f"sqlite:///{tmp_path / 'trainkit.db'}", create=False) as kit:
        assert kit.count(task="qa") + len(spilled_questions(tmp_path)) >= 50
        assert {ex.inputs["question"] for ex in kit.examples(task="qa")} | set(spilled_questions(tmp_path)) == {
            f"question {i}" for i in range(50)}


def test_sigterm_during_kit_close_waits_for_the_close_then_takes_its_default_action(tmp_path: Path) -> None:
    (tmp_path / "trainkit.toml").write_text(CONFIG.replace("BATCH", "100"), encoding="utf-8")
    script = r"""
import os, signal, sys, threading, time
import dspy_trainkit as tk

class SlowValidator:
    @tk.hookimpl
    def validate(self, examples, context):
        time.sleep(0.2)

kit = tk.open(config=sys.argv[1] + "/trainkit.toml", plugins=[("slow", SlowValidator())])
for i in range(1000):
    kit.collect("qa", {"question": f"question {i}"}, {"answer": "a"})
closing = threading.Event()
def terminate_soon():
    closing.wait()
    time.sleep(0.3)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=terminate_soon, daemon=True).start()
closing.set()
kit.close()
print("not reached", flush=True)
"""
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGTERM, proc.stderr  # the close is over: nothing of ours left to save
    assert "not reached" not in proc.stdout and "received SIGTERM" in proc.stderr
    with tk.open(f"sqlite:///{tmp_path / 'trainkit.db'}", create=False) as kit:
        stored = {ex.inputs["question"] for ex in kit.examples(task="qa")}
    assert stored | set(spilled_questions(tmp_path)) == {f"question {i}" for i in range(1000)}


def test_sigterm_without_an_open_collector_keeps_the_default_action(tmp_path: Path) -> None:
    script = r"""
import sys, time
import dspy_trainkit as tk
with tk.open(f"sqlite:///{sys.argv[1]}/store.db") as kit:
    kit.collect("qa", {"question": "q"}, {"answer": "a"})
print("closed", flush=True)
time.sleep(600)
"""
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "closed"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM  # killed by the signal, as without trainkit


# ---- a spill file that cannot be written --------------------------------------------------------------------

class Boom:
    """A validator with a bug: every batch goes to a spill file."""

    @tk.hookimpl
    def validate(self, examples: list[tk.Example], context: Any) -> None:
        raise RuntimeError("plugin bug")


@pytest.fixture
def kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tk.Kit]:
    (tmp_path / "trainkit.toml").write_text(CONFIG.replace("BATCH", "50"), encoding="utf-8")
    monkeypatch.setenv("TRAINKIT_LOAD_PLUGINS", "basic_checks,jsonl")
    monkeypatch.setattr(collection, "RETRY_DELAYS", (0.0,))
    with tk.open(config=tmp_path / "trainkit.toml", plugins=[("boom", Boom())]) as opened:
        yield opened


def break_spill_folder(kit: tk.Kit) -> Path:
    """The spill folder's place taken by a file: writing a spill file fails, as on a full disk."""
    folder = kit.settings.project_dir / ".trainkit"
    folder.write_text("not a folder", encoding="utf-8")
    return folder


def test_unwritable_spill_file_is_reported_and_its_records_are_kept_until_it_works(
        kit: tk.Kit, caplog: pytest.LogCaptureFixture) -> None:
    folder = break_spill_folder(kit)
    with caplog.at_level(logging.ERROR, logger="dspy_trainkit.collection"):
        assert all(kit.collect("qa", {"question": f"question {i}"}, {"answer": "a"}) for i in range(110))
        assert kit.flush(timeout=30) is False  # not everything is safe (the timeout only guards the old hang)
    stats = kit.collection.stats
    assert stats.unsaved == 110 and stats.spill_errors >= 1 and stats.spilled == 0
    assert "cannot be written" in caplog.text and "kept in memory" in caplog.text
    assert kit.collection._thread is not None and kit.collection._thread.is_alive()  # the writer goes on

    folder.unlink()  # the disk has room again
    assert kit.flush(timeout=30) is True
    assert stats.unsaved == 0 and stats.spilled == 110 and stats.dropped == 0
    assert sorted(spilled_questions(kit.settings.project_dir)) == sorted(f"question {i}" for i in range(110))

    kit.pm.unregister(name="boom")
    kit.import_files(sorted(folder.glob("collect-failed-*.jsonl")))
    assert kit.count(task="qa") == 110


def test_records_that_can_be_kept_nowhere_are_refused_counted_and_logged(
        kit: tk.Kit, caplog: pytest.LogCaptureFixture) -> None:
    break_spill_folder(kit)
    kit._collector = collection.Collector(kit, max_queue=60)  # memory for 60 records
    with caplog.at_level(logging.ERROR, logger="dspy_trainkit.collection"):
        for i in range(60):
            assert kit.collect("qa", {"question": f"question {i}"}, {"answer": "a"})
            if i % 10 == 9:
                kit.flush(timeout=30)
        assert kit.collect("qa", {"question": "one too many"}, {"answer": "a"}) is False
        assert kit.collection.stats.dropped == 1
        assert "collection is dropping records" in caplog.text
        kit.collection.close()  # the spill file still cannot be written: the 60 are lost, and said to be
    assert kit.collection.stats.dropped == 61 and kit.collection.stats.unsaved == 0
    assert "60 collected examples are lost" in caplog.text


# ---- the DSPy callback beside other callbacks -------------------------------------------------------------------

def test_add_dspy_callback_keeps_callbacks_installed_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "true")
    import dspy
    from dspy.utils import DummyLM
    from dspy.utils.callback import BaseCallback

    class Tracer(BaseCallback):  # stands in for MLflow's autolog callback
        def __init__(self) -> None:
            self.calls = 0

        def on_module_end(self, call_id: str, outputs: Any, exception: BaseException | None = None) -> None:
            self.calls += 1

    tracer = Tracer()
    dspy.configure(lm=DummyLM([{"answer": "4"}] * 5), callbacks=[tracer])
    try:
        with tk.open(f"sqlite:///{tmp_path / 'store.db'}") as kit:
            callback = kit.add_dspy_callback(task="qa")
            assert dspy.settings.callbacks == [tracer, callback]
            dspy.Predict("question -> answer")(question="2 + 2?")
            assert kit.flush(30)
            assert tracer.calls == 1
            assert [ex.outputs for ex in kit.examples(task="qa")] == [{"answer": "4"}]
    finally:
        dspy.configure(lm=None, callbacks=[])


def test_a_spill_write_that_fails_midway_leaves_no_broken_file(kit: tk.Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills while the spill file is written: the partial file is removed (a later import would read a
    broken last line, or an empty file), the records wait in memory, and the next attempt writes them whole."""
    import errno
    import pathlib

    real_open = pathlib.Path.open
    disk_full = {"on": True}

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.handle.write(data[: len(data) // 2])  # half of it lands, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")

    def open_on_a_full_disk(self, mode="r", *args, **kwargs):
        handle = real_open(self, mode, *args, **kwargs)
        if disk_full["on"] and self.name.startswith("collect-failed-"):
            return FullDisk(handle)
        return handle

    monkeypatch.setattr(pathlib.Path, "open", open_on_a_full_disk)
    assert all(kit.collect("qa", {"question": f"question {i}"}, {"answer": "a"}) for i in range(20))
    assert kit.flush(timeout=30) is False
    folder = kit.settings.project_dir / ".trainkit"  # (the writer retries meanwhile: look only at the end)
    assert kit.collection.stats.unsaved == 20 and kit.collection.stats.spill_errors >= 1

    disk_full["on"] = False
    assert kit.flush(timeout=30) is True
    (spilled,) = folder.glob("collect-failed-*.jsonl")
    assert sorted(spilled_questions(kit.settings.project_dir)) == sorted(f"question {i}" for i in range(20))
    assert all(line.endswith("}") for line in spilled.read_text(encoding="utf-8").splitlines())


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_the_writer_thread_blocks_sigterm_so_the_kernel_delivers_it_to_the_main_thread(tmp_path: Path) -> None:
    """A SIGTERM the kernel hands to the collector's writer thread only set a flag: a pipeline whose main thread
    slept in C never ran the handler and went on running (seen 1 in 88 runs under load). The writer blocks it."""
    import threading

    (tmp_path / "trainkit.toml").write_text(CONFIG.replace("BATCH", "10"), encoding="utf-8")
    with tk.open(config=str(tmp_path / "trainkit.toml")) as kit:
        assert kit.collect("qa", {"question": "q"}, {"answer": "a"})
        assert kit.collection.flush(timeout=60)
        (writer,) = [t for t in threading.enumerate() if t.name == "trainkit-collector"]
        status = (Path("/proc/self/task") / str(writer.native_id) / "status").read_text()
        blocked = int(next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16)
        assert blocked & (1 << (signal.SIGTERM - 1)) and blocked & (1 << (signal.SIGINT - 1))
        main_status = (Path("/proc/self/task") / str(threading.main_thread().native_id) / "status").read_text()
        main_blocked = int(next(x for x in main_status.splitlines() if x.startswith("SigBlk:")).split()[1], 16)
        assert not main_blocked & (1 << (signal.SIGTERM - 1))
