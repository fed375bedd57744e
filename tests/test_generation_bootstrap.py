"""`trainkit bootstrap` / `kit.bootstrap` against the loopback OpenAI-compatible server: faults, duplicates,
kill -9 and resume, dry runs, and clear errors before any work. DSPy's cache is off in every project here."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli
from dspy_trainkit.generation.calls import LMCalls
from dspy_trainkit.settings import load_settings
from dspy_trainkit.testing import (
    Faults,
    OpenAIServer,
    dspy_reply,
    input_fields,
    malformed_reply,
    rate_limited,
    server_error,
    timeout_reply,
)

KEY = "TK_BOOT_KEY"
PLAN = "bootstrap:problems"


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY, "loopback-key")
    monkeypatch.setattr(LMCalls, "DEFAULT_BACKOFF", 0.02)  # retries wait milliseconds, not seconds


def write_project(folder: Path, api_base: str, *, topics: int = 2, difficulties: int = 2, per_cell: int = 1,
                  retries: int = 3, timeout: float = 2.0, concurrency: int = 4, store: str = "trainkit.db") -> Path:
    topic_list = ", ".join(f'"topic{i}"' for i in range(topics))
    level_list = ", ".join(f'"level{i}"' for i in range(difficulties))
    (folder / "trainkit.toml").write_text(f"""
[store]
url = "sqlite:///{store}"

[plugins]
load = ["basic_checks"]

[lm.generation]
model = "openai/test-model"
api_base = "{api_base}"
api_key_env = "{KEY}"
cache = false
retries = {retries}
timeout = {timeout}
concurrency = {concurrency}

[tasks.problems]
signature = "domain, topic, difficulty -> problem, solution, answer"
topics = [{topic_list}]
difficulties = [{level_list}]
per_cell = {per_cell}

[tasks.problems.domains.math]

[tasks.problems.domains.physics]
topics = ["kinematics"]
""")
    return folder


def unique_answers(duplicate_every: int = 0):
    """A responder answering each request with a new problem for the cell it is asked about; with
    `duplicate_every`, every n-th answer is the same problem for its topic (an exact duplicate of an earlier
    one whenever it lands in a cell that has it already)."""
    numbers = itertools.count(1)
    lock = threading.Lock()

    def respond(body):
        with lock:
            n = next(numbers)
        fields = input_fields(body)
        if duplicate_every and n % duplicate_every == 0:
            return dspy_reply({"problem": f"The same problem on {fields.get('topic')}", "solution": "same",
                               "answer": "2"})
        return dspy_reply({"problem": f"Problem {n} on {fields.get('topic')} ({fields.get('difficulty')})",
                           "solution": f"Work {n}", "answer": str(n)})

    return respond


def run_cli(folder: Path, *args: str) -> tuple[int, str, str]:
    old = os.getcwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def open_kit(folder: Path) -> tk.Kit:
    return tk.open(settings=load_settings(cwd=folder))


def test_dry_run_prints_the_plan_and_calls_nothing(tmp_path: Path) -> None:
    with OpenAIServer(unique_answers()) as server:
        write_project(tmp_path, server.url, per_cell=2)
        code, out, _ = run_cli(tmp_path, "bootstrap", "--task", "problems", "--dry-run")
        assert code == 0
        assert "math     topic0      level0" in out and "physics  kinematics  level1" in out
        assert "would make 12 example(s)" in out and "12 call(s) before retries" in out
        code, out, _ = run_cli(tmp_path, "bootstrap", "--task", "problems", "--dry-run", "--domain", "physics",
                               "--json")
        report = json.loads(out)
        assert (report["planned"], report["to_make"], len(report["cells"])) == (4, 4, 2)
        assert server.counts["requests"] == 0
    with open_kit(tmp_path) as kit:
        assert kit.count() == 0 and kit.store.plan_info(PLAN) is None


def test_missing_key_variable_is_one_error_before_any_work(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(KEY)
    with OpenAIServer(unique_answers()) as server:
        write_project(tmp_path, server.url)
        code, out, err = run_cli(tmp_path, "bootstrap", "--task", "problems")
        assert code == 1
        assert err.strip().splitlines() == [
            f"Error: [lm.generation] (or [tasks.problems.lm.generation]): api_key_env names the environment "
            f"variable {KEY}, which is not set; export {KEY}=<your API key> (the key is never stored in settings)"]
        assert "Traceback" not in out + err
        assert server.counts["requests"] == 0
    with open_kit(tmp_path) as kit:
        assert kit.store.plan_info(PLAN) is None


def test_unreachable_lm_is_one_error_before_any_work(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        url = server.url
    write_project(tmp_path, url, retries=0)  # the server is stopped: nothing listens there any more
    code, _, err = run_cli(tmp_path, "bootstrap", "--task", "problems")
    assert code == 1
    assert err.startswith("Error: LM 'openai/test-model' at http://127.0.0.1:") and "cannot be used: connection" in err
    code, _, err = run_cli(tmp_path, "lm", "check")
    assert code == 1 and "cannot be used: connection" in err
    with open_kit(tmp_path) as kit:
        assert kit.store.plan_info(PLAN) is None


def test_lm_check_reports_the_answer(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        write_project(tmp_path, server.url)
        code, out, _ = run_cli(tmp_path, "lm", "check", "--json")
        assert code == 0
        data = json.loads(out)
        assert data["ok"] and data["model"] == "openai/test-model" and data["api_base"] == server.url
        assert server.counts["requests"] == 1


def test_300_examples_with_30_percent_faults(tmp_path: Path) -> None:
    """30% of requests fail (429 with Retry-After 0, 500, timeout, malformed) and every 7th answer repeats one per
    topic: the run completes or names every unrecoverable slot with its reason, counts add up, the exit
    status says which, no slot gets two examples, and re-runs finish the plan with exactly 300 examples."""
    faults = Faults(rate=0.3, seed=7, kinds=[rate_limited(retry_after=0), server_error(), timeout_reply(2.0),
                                             malformed_reply()])
    with OpenAIServer(unique_answers(duplicate_every=7), faults=faults) as server:
        # --domain math: 5 topics x 3 levels = 15 cells, 20 slots each = 300
        write_project(tmp_path, server.url, topics=5, difficulties=3, per_cell=20, retries=3, timeout=0.3,
                      concurrency=16)
        code, out, _ = run_cli(tmp_path, "bootstrap", "--task", "problems", "--domain", "math", "--json")
        report = json.loads(out)
        lm = report["lm"]
        assert report["planned"] == 300
        assert report["planned"] == report["done"] + report["failed"] + report["pending"] + report["in_progress"]
        assert report["done"] == report["done_before"] + report["made"] + report["recovered"] + report["by_others"]
        assert report["made"] == report["accepted"] + report["candidates"] + report["rejected"]
        assert report["pending"] == 0 and report["in_progress"] == 0
        assert code == (0 if report["failed"] == 0 else 4)
        # every failed attempt was retried or recorded as the item's failure
        assert sum(lm["errors"].values()) == lm["retries"] + lm["failed"]
        assert set(lm["errors"]) <= {"rate_limit", "server_error", "timeout", "malformed"}
        assert lm["retries"] > 50  # the faults really happened
        assert server.counts["rate_limited"] and server.counts["server_error"] and server.counts["timeout"]
        assert report["duplicates"] >= 1  # duplicate answers were generated again
        with open_kit(tmp_path) as kit:
            failed = kit.store.plan_slots(PLAN, state="failed")
            assert len(failed) == report["failed"]
            assert all(s.reason and s.last_error for s in failed)
            assert sum(report["failures"].values()) == report["failed"]
        for _ in range(3):  # re-runs try the failed slots again
            if code == 0:
                break
            code, out, _ = run_cli(tmp_path, "bootstrap", "--task", "problems", "--domain", "math", "--json")
        assert code == 0
        assert json.loads(out)["done"] == 300
    with open_kit(tmp_path) as kit:
        examples = list(kit.examples(task="problems", source="bootstrap"))
        assert len(examples) == 300
        slots = [ex.provenance["slot"] for ex in examples]
        assert len(set(slots)) == 300  # one example per slot
        assert len({ex.content_hash for ex in examples}) == 300
        assert all(ex.domain == "math" and ex.topic and ex.difficulty for ex in examples)
        assert examples[0].provenance["generator"]["model"] == "openai/test-model"
        assert kit.store.slot_counts(PLAN, domain="math") == {"done": 300}
        retried = [ex for ex in examples if ex.provenance["attempt"] > 1]
        assert retried and all(ex.provenance["generator"]["temperature"] > 0.7 for ex in retried)


def test_rerun_of_a_finished_plan_makes_no_calls(tmp_path: Path) -> None:
    with OpenAIServer(unique_answers()) as server:
        write_project(tmp_path, server.url, per_cell=2)
        with open_kit(tmp_path) as kit:
            first = kit.bootstrap("problems", check=False)
            assert (first.made, first.complete) == (12, True)
            before = server.counts["requests"]
            second = kit.bootstrap("problems", check=False)
            assert server.counts["requests"] == before
            assert (second.made, second.done_before, second.lm["calls"]) == (0, 12, 0)
            third = kit.bootstrap("problems", per_cell=3, check=False)  # a bigger per_cell adds slots
            assert (third.planned, third.made, third.lm["calls"]) == (18, 6, 6)
            assert kit.count(task="problems") == 18


def test_a_stored_but_unmarked_example_is_recovered_without_a_call(tmp_path: Path) -> None:
    """The crash window between storing a slot's example and marking the slot done: the slot is still claimed
    (by a worker that is gone) with its example id attached; the re-run marks it done and calls nothing."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = f"{os.uname().nodename}:{child.pid}:gone"
    with OpenAIServer(unique_answers()) as server:
        write_project(tmp_path, server.url)
        with open_kit(tmp_path) as kit:
            assert kit.bootstrap("problems", check=False).made == 6
            kit.store.db.execute_sql("UPDATE plan_slots SET state = 'claimed', owner = ?, lease_until = ? "
                                     "WHERE slot = 0 AND domain = 'math' AND topic = 'topic0' AND difficulty = "
                                     "'level0'", (dead, time.time() + 3600))
            before = server.counts["requests"]
            report = kit.bootstrap("problems", check=False)
            assert (report.recovered, report.made, report.done, report.lm["calls"]) == (1, 0, 6, 0)
            assert server.counts["requests"] == before
            assert kit.count(task="problems") == 6


def test_custom_program_from_the_project_folder(tmp_path: Path) -> None:
    (tmp_path / "my_generator.py").write_text(
        "import dspy\n\n"
        "class Gen(dspy.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.p = dspy.Predict('topic, difficulty -> problem, solution, answer')\n"
        "    def forward(self, topic, difficulty):\n"
        "        return self.p(topic=topic, difficulty=difficulty)\n")
    with OpenAIServer(unique_answers()) as server:
        write_project(tmp_path, server.url)
        text = (tmp_path / "trainkit.toml").read_text()
        text = text.replace('signature = "domain, topic, difficulty -> problem, solution, answer"',
                            'inputs = ["topic", "difficulty"]\noutputs = ["problem", "solution", "answer"]\n'
                            'program = "my_generator:Gen"')
        (tmp_path / "trainkit.toml").write_text(text)
        with open_kit(tmp_path) as kit:
            report = kit.bootstrap("problems", check=False)
            assert report.complete and report.made == 6
            example = next(kit.examples(task="problems"))
            assert set(example.inputs) == {"topic", "difficulty"} and example.domain in ("math", "physics")
            assert example.provenance["generator"]["program"] == "my_generator:Gen"


def test_bad_program_and_unknown_domain_are_config_errors(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        write_project(tmp_path, server.url)
        code, _, err = run_cli(tmp_path, "bootstrap", "--task", "problems", "--domain", "chemistry")
        assert code == 1 and "has no domain 'chemistry'; its domains: math, physics" in err
        text = (tmp_path / "trainkit.toml").read_text()
        (tmp_path / "trainkit.toml").write_text(text.replace("per_cell = 1", 'per_cell = 1\nprogram = "nowhere:Gen"'))
        code, _, err = run_cli(tmp_path, "bootstrap", "--task", "problems")
        assert code == 1 and "program = 'nowhere:Gen': cannot import it" in err
        assert server.counts["requests"] == 0


KILL_SCRIPT = """
import sys
from dspy_trainkit.cli.main import main
sys.argv = ["trainkit", "bootstrap", "--task", "problems", "--quiet"]
main()
"""


def test_killed_midway_and_rerun_makes_exactly_the_plan(tmp_path: Path) -> None:
    """A bootstrap in another process is killed with SIGKILL after some slots are done; the re-run takes back
    the dead worker's claims at once, recognises examples it stored but did not mark, and ends with exactly
    the planned number of examples, one per slot."""
    with OpenAIServer(unique_answers(), latency=0.05) as server:
        # (4 topics x 3 levels + 1 x 3) cells x 4 = 60 slots
        write_project(tmp_path, server.url, topics=4, difficulties=3, per_cell=4, concurrency=4)
        env = {**os.environ, KEY: "loopback-key", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        child = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT], cwd=tmp_path, env=env)
        try:
            deadline = time.monotonic() + 60
            done = 0
            while time.monotonic() < deadline and child.poll() is None:
                if (tmp_path / "trainkit.db").exists():
                    with open_kit(tmp_path) as kit:
                        if kit.store.plan_info(PLAN) is not None:
                            done = kit.store.slot_counts(PLAN).get("done", 0)
                if done >= 12:
                    break
                time.sleep(0.05)
            assert child.poll() is None, "the bootstrap ended before it could be killed"
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait()
        with open_kit(tmp_path) as kit:
            counts = kit.store.slot_counts(PLAN)
            assert 12 <= counts.get("done", 0) < 60 and counts.get("claimed", 0) > 0  # killed with work in hand
            stored_before = kit.count(task="problems")
            report = kit.bootstrap("problems", check=False)
            assert report.complete
            assert report.planned == report.done == 60
            assert report.done_before + report.made + report.recovered == 60
            examples = list(kit.examples(task="problems"))
            assert len(examples) == 60 == stored_before + report.made
            assert len({ex.provenance["slot"] for ex in examples}) == 60


def test_two_bootstrap_workers_on_one_postgresql_store(tmp_path: Path, postgres_schema_url: str) -> None:
    """Two bootstraps of one plan at once against one PostgreSQL store: together they make exactly the plan,
    one example per slot, and each worker's report counts the other's work as by_others."""
    with OpenAIServer(unique_answers(), latency=0.02) as server:
        write_project(tmp_path, server.url, topics=4, difficulties=3, per_cell=4, concurrency=4)  # 60 slots
        text = (tmp_path / "trainkit.toml").read_text().replace('url = "sqlite:///trainkit.db"',
                                                                 f'url = "{postgres_schema_url}"')
        (tmp_path / "trainkit.toml").write_text(text)
        reports = []
        start = threading.Barrier(2)

        def worker() -> None:
            with open_kit(tmp_path) as kit:
                start.wait()
                reports.append(kit.bootstrap("problems", check=False))

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert len(reports) == 2
        assert sum(r.made for r in reports) == 60 and all(r.made > 0 for r in reports)
        assert all(r.failed == 0 and r.pending == 0 for r in reports)
        assert server.counts["requests"] == 60  # no slot was generated twice
    with open_kit(tmp_path) as kit:
        examples = list(kit.examples(task="problems"))
        assert len(examples) == 60 and len({ex.provenance["slot"] for ex in examples}) == 60
        assert kit.store.slot_counts(PLAN) == {"done": 60}


def test_ctrl_c_releases_claims_and_exits_130(tmp_path: Path) -> None:
    with OpenAIServer(unique_answers(), latency=0.05) as server:
        write_project(tmp_path, server.url, topics=4, difficulties=3, per_cell=4, concurrency=2)
        env = {**os.environ, KEY: "loopback-key", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        child = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT], cwd=tmp_path, env=env, stderr=subprocess.PIPE,
                                 text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None and server.counts["ok"] < 6:
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
        assert child.returncode == 130
        assert "interrupted; finished slots are stored. Re-run `trainkit bootstrap --task problems`" in err
        assert "Traceback" not in err
        with open_kit(tmp_path) as kit:
            counts = kit.store.slot_counts(PLAN)
            assert "claimed" not in counts and counts.get("done", 0) >= 1  # nothing left locked
            assert kit.count(task="problems") == counts["done"]


def test_unrecoverable_failures_exit_4_and_a_rerun_finishes_them(tmp_path: Path) -> None:
    """Every request about topic1 gets a 500 until the server is "fixed": those slots fail with their reason
    after the retries, the exit status is 4 and the message says how to re-run; the re-run makes only them."""
    broken = {"on": True}
    good = unique_answers()

    def respond(body):
        if broken["on"] and input_fields(body).get("topic") == "topic1":
            return server_error()
        return good(body)

    with OpenAIServer(respond) as server:
        write_project(tmp_path, server.url, retries=2)  # math: topic0, topic1 x 2 levels; physics: 2 cells
        code, out, err = run_cli(tmp_path, "bootstrap", "--task", "problems")
        assert code == 4
        assert "plan bootstrap:problems: 6 slots: 4 done, 2 failed, 0 pending" in out
        assert "math/topic1/level0#0  server_error  3" in out  # three tries each
        assert "incomplete (server_error: 2); re-run `trainkit bootstrap --task problems`" in err
        assert server.counts["server_error"] == 2 * 3  # two slots, each tried 1 + 2 times
        broken["on"] = False
        before = server.counts["requests"]
        code, out, _ = run_cli(tmp_path, "bootstrap", "--task", "problems", "--json")
        report = json.loads(out)
        assert code == 0 and report["made"] == 2 and report["done_before"] == 4 and report["done"] == 6
        assert server.counts["requests"] - before == 2 + 1  # the two failed slots and the check call


def test_leases_are_renewed_while_a_slow_call_runs(tmp_path: Path) -> None:
    """Calls take longer than the lease: the worker's heartbeat renews its claims, so a second worker never
    takes over a slot that is still being made (every slot costs exactly one request)."""
    with OpenAIServer(unique_answers(), latency=0.6) as server:
        write_project(tmp_path, server.url, concurrency=3)  # 6 slots
        reports = []

        def worker(delay: float) -> None:
            time.sleep(delay)
            with open_kit(tmp_path) as kit:
                reports.append(kit.bootstrap("problems", check=False, lease=0.3))

        threads = [threading.Thread(target=worker, args=(d,)) for d in (0.0, 0.35)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(reports) == 2 and sum(r.made for r in reports) == 6
        assert server.counts["requests"] == 6 and sum(r.lost for r in reports) == 0


def test_a_slot_claimed_too_often_fails_with_reason_lease(tmp_path: Path) -> None:
    with OpenAIServer(unique_answers()) as server:
        write_project(tmp_path, server.url)
        with open_kit(tmp_path) as kit:
            kit.bootstrap("problems", per_cell=1, dry_run=True)
            kit.store.ensure_plan(PLAN, "problems", {}, [("math", "topic0", "level0", 0)])
            kit.store.db.execute_sql("UPDATE plan_slots SET attempts = 10")  # claimed 10 times, never finished
            report = kit.bootstrap("problems", check=False)
            assert report.failures == {"lease": 1} and report.made == 5 and not report.complete
            assert report.failed_slots[0]["slot"] == "math/topic0/level0#0"
            assert server.counts["requests"] == 5


def test_changed_topics_fill_only_the_new_cells_and_counts_add_up(tmp_path: Path) -> None:
    """After a bootstrap, the task's topics change (topic1 removed, topic2 and topic3 added): the dry run and
    the real run count only the current cells, the run fills only the new ones, the counts identity holds,
    and the removed cell's slots are reported as stale, not claimed or counted."""
    with OpenAIServer(unique_answers()) as server:
        write_project(tmp_path, server.url, per_cell=2)  # math: topic0, topic1 x 2 levels; physics: 2 cells
        with open_kit(tmp_path) as kit:
            assert kit.bootstrap("problems", check=False).made == 12
        text = (tmp_path / "trainkit.toml").read_text()
        (tmp_path / "trainkit.toml").write_text(text.replace('topics = ["topic0", "topic1"]',
                                                             'topics = ["topic0", "topic2", "topic3"]'))
        code, out, _ = run_cli(tmp_path, "bootstrap", "--task", "problems", "--dry-run", "--json")
        dry = json.loads(out)
        assert code == 0
        # math: 3 topics x 2 levels + physics: 2 cells = 8 cells x 2 = 16 slots; 8 done (topic0, kinematics)
        assert (dry["planned"], dry["done"], dry["to_make"], dry["stale"]) == (16, 8, 8, 4)
        assert dry["to_make"] == sum(c["to_make"] for c in dry["cells"])
        code, out, _ = run_cli(tmp_path, "bootstrap", "--task", "problems", "--dry-run")
        assert "plan bootstrap:problems: 16 slots, 8 done; would make 8 example(s)" in out
        assert "4 slot(s) of the stored plan belong to cells no longer in the task's settings" in out
        before = server.counts["requests"]
        with open_kit(tmp_path) as kit:
            report = kit.bootstrap("problems", check=False)
            assert (report.planned, report.done_before, report.made, report.done, report.stale) == (16, 8, 8, 16, 4)
            assert report.planned == report.done + report.failed + report.pending + report.in_progress
            assert report.done == report.done_before + report.made + report.recovered + report.by_others
            assert report.complete and server.counts["requests"] - before == 8
            made = [ex for ex in kit.examples(task="problems") if ex.provenance["plan"] == PLAN]
            assert len(made) == 20
            new = {(ex.topic, ex.difficulty) for ex in made if ex.topic in ("topic2", "topic3")}
            assert new == {(t, d) for t in ("topic2", "topic3") for d in ("level0", "level1")}
            assert sum(1 for ex in made if ex.topic == "topic1") == 4  # the removed cell's examples stay


def test_progress_line_counts_whole_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from dspy_trainkit.cli.generation import _Bar
    from dspy_trainkit.generation.bootstrap import BootstrapReport

    terminal = io.StringIO()
    terminal.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = _Bar(quiet=False)
    report = BootstrapReport(task="problems", plan=PLAN, planned=13, made=5, accepted=5)
    bar.update(report)
    bar.progress.bar.refresh()
    bar.close()
    line = terminal.getvalue()
    assert "| 5/13 [" in line and "0slot [" in line and "/13.0" not in line


def test_bootstrap_reports_the_diversity_of_what_it_stored(tmp_path: Path) -> None:
    """Distinct-1/-2 over the stored examples' texts and coverage of the run's cells, in --json and the summary;
    a generator that repeats itself scores lower distinct-n than one that does not."""
    with OpenAIServer(unique_answers()) as server:
        write_project(tmp_path, server.url, per_cell=2)  # 6 cells x 2
        code, out, _ = run_cli(tmp_path, "bootstrap", "--task", "problems", "--domain", "math", "--json")
        diversity = json.loads(out)["diversity"]
        assert code == 0
        assert (diversity["examples"], diversity["cells_total"], diversity["cells_covered"]) == (8, 4, 4)
        assert (diversity["coverage"], diversity["min_per_cell"], diversity["max_per_cell"]) == (1.0, 2, 2)
        assert diversity["outside_cells"] == 0
        varied = diversity["distinct_2"]
        assert 0 < diversity["distinct_1"] < 1 and 0 < varied <= 1
        code, out, _ = run_cli(tmp_path, "bootstrap", "--task", "problems", "--domain", "physics")
        assert code == 0
        assert "diversity of the 4 stored: distinct-1 " in out and "cells 2/2 covered (2-2 per cell)" in out

    def same_words(body):  # every answer says the same thing apart from a number
        fields = input_fields(body)
        number = next(counter)
        return dspy_reply({"problem": f"Compute the sum {number}", "solution": "Add them up",
                           "answer": f"{fields.get('topic')} {fields.get('difficulty')}"})

    counter = itertools.count(1)
    other = tmp_path / "repetitive"
    other.mkdir()
    with OpenAIServer(same_words) as server:
        write_project(other, server.url, per_cell=2)
        with open_kit(other) as kit:
            report = kit.bootstrap("problems", domain="math", check=False)
    assert report.diversity["examples"] == 8 and report.diversity["distinct_2"] < varied


def test_unknown_task_is_one_error_naming_the_known_tasks(tmp_path: Path) -> None:
    """`lm check -t`, `bootstrap -t` and `bootstrap --dry-run -t` with a misspelt task: exit 1 and one line
    saying the task is unknown, before any LM call; `lm check` too when no store exists yet."""
    with OpenAIServer(unique_answers()) as server:
        write_project(tmp_path, server.url)
        expected = "Error: unknown task 'problem': not declared in the settings ([tasks.problem]) and no"
        code, _, err = run_cli(tmp_path, "lm", "check", "-t", "problem")  # no store yet
        assert code == 1 and err.startswith(expected) and err.rstrip().endswith("known tasks: problems")
        assert not (tmp_path / "trainkit.db").exists()
        for args in (["bootstrap", "-t", "problem"], ["bootstrap", "-t", "problem", "--dry-run"],
                     ["lm", "check", "-t", "problem"]):
            code, out, err = run_cli(tmp_path, *args)
            assert code == 1, args
            assert err.strip().splitlines() == [f"{expected} examples stored; known tasks: problems"], args
            assert "Traceback" not in out + err
        assert server.counts["requests"] == 0
        code, _, _ = run_cli(tmp_path, "lm", "check", "-t", "problems")
        assert code == 0
