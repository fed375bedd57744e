"""`--log-format json` / TRAINKIT_LOG_FORMAT=json: every line a command writes to stderr is one JSON object,
DSPy's routed lines and the final error included, with the log call's fields (plugin, task, run id); the
default stays human. Real processes, as a deployment runs them."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from helpers import QUALITY_PLUGINS
from optimize_support import (
    METRIC,
    PROGRAM,
    TASK,
    cell_records,
    good_answer,
    import_generated,
    make_project,
    open_project,
)

from dspy_trainkit.cli.logs import JsonFormatter
from dspy_trainkit.redaction import redact_all_log_records
from dspy_trainkit.testing import OpenAIServer


def trainkit(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dspy_trainkit", *args], cwd=folder, env=env,
                          capture_output=True, text=True)


def json_lines(stderr: str) -> list[dict]:
    lines = stderr.splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]  # fails on any line that is not one JSON object


def test_every_stderr_line_of_an_optimize_run_is_json(tmp_path):
    data = {("math", topic, level): 3 for topic in ("fractions", "percentages") for level in ("easy", "hard")}
    with OpenAIServer(good_answer) as server:
        config = make_project(tmp_path / "p", extra=(
            f'[lm.program]\nmodel = "openai/test-model"\napi_base = "{server.url}"\ncache = false\n'
            f'api_key_env = "LOOPBACK_KEY"\n\n[optimize]\nprogram = "{PROGRAM}"\nmetric = "{METRIC}"\n'))
        with open_project(config) as kit:
            import_generated(kit, tmp_path, cell_records(data))
        env = {**os.environ, "LOOPBACK_KEY": "loopback-key", "TRAINKIT_DISABLE_PLUGINS": ",".join(QUALITY_PLUGINS),
               "TRAINKIT_LOG_FORMAT": "json"}
        done = trainkit(tmp_path / "p", env, "-v", "optimize", "--task", TASK, "--no-promote")
    assert done.returncode == 0, done.stderr
    records = json_lines(done.stderr)
    assert any(r["logger"].startswith("dspy") and "Average Metric" in r["message"] for r in records)
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)


def test_errors_and_plugin_warnings_are_json_with_their_fields(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}
    assert trainkit(tmp_path, env, "init").returncode == 0
    done = trainkit(tmp_path, env, "--log-format", "json", "show", "no-such-id")
    assert done.returncode == 1
    (error,) = json_lines(done.stderr)
    assert error["level"] == "error" and "no-such-id" in error["message"] and error["error"] == "NotFoundError"
    human = trainkit(tmp_path, env, "show", "no-such-id")
    assert human.returncode == 1 and human.stderr.startswith("Error: ")  # the default stays human


def test_formatter_adds_extra_fields_and_redacts_them():
    redact_all_log_records()
    logger = logging.getLogger("dspy_trainkit.test_json_logs")
    record = logger.makeRecord(logger.name, logging.WARNING, __file__, 1, "task %s: store %s failed", (
        "qa", "postgresql://u:s3cret@db/x"), None, extra={"task": "qa", "run_id": "r1", "plugin": "p",
                                                          "url": "postgresql://u:s3cret@db/x"})
    line = json.loads(JsonFormatter().format(record))
    assert (line["task"], line["run_id"], line["plugin"], line["level"]) == ("qa", "r1", "p", "warning")
    assert "s3cret" not in json.dumps(line) and line["message"].startswith("task qa: store postgresql://")


def test_usage_errors_are_json_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}
    assert trainkit(tmp_path, env, "init").returncode == 0
    cases = ((("--log-format", "json", "--bogus"), {}), (("show", "--nope"), {"TRAINKIT_LOG_FORMAT": "json"}),
             (("--log-format=json", "show"), {}))
    for args, env_extra in cases:
        done = trainkit(tmp_path, {**env, **env_extra}, *args)
        assert done.returncode == 2, done.stderr
        (error,) = json_lines(done.stderr)
        assert error["level"] == "error" and error["usage"].startswith("Usage: trainkit"), error
    human = trainkit(tmp_path, env, "show", "--nope")
    assert human.returncode == 2 and "Usage: trainkit show" in human.stderr  # the default stays click's


def test_import_rejections_are_json_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}
    assert trainkit(tmp_path, env, "init").returncode == 0
    (tmp_path / "in.jsonl").write_text('{"question": "q1", "answer": "a1"}\nnot json\n', encoding="utf-8")
    done = trainkit(tmp_path, {**env, "TRAINKIT_LOG_FORMAT": "json"}, "import", "in.jsonl", "--task", "qa",
                    "--input-fields", "question", "--output-fields", "answer")
    records = json_lines(done.stderr)
    assert any(r.get("position") and r.get("reasons") for r in records), records


def test_metrics_serve_start_line_is_json(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}
    assert trainkit(tmp_path, env, "init").returncode == 0
    process = subprocess.Popen([sys.executable, "-m", "dspy_trainkit", "--log-format", "json", "metrics", "serve",
                                "--port", "0"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
    finally:
        process.terminate()
        process.wait()
    started = json.loads(line)
    assert started["message"].startswith("serving metrics on ") and started["url"].endswith("/metrics")
