"""`trainkit optimize` keeps DSPy's output in line: off a terminal (cron, CI, a pipe) neither DSPy's tqdm bars
nor its INFO lines reach stderr, -v shows DSPy's lines in trainkit's format, and -q on a terminal silences the
bars too. Real processes, because DSPy sets up its logging and tqdm reads its settings when first imported."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
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

from dspy_trainkit.testing import OpenAIServer

BAR = "it/s]"  # what every tqdm update line ends with


def _optimize(folder: Path, env: dict[str, str], *args: str, stderr: int | None = subprocess.PIPE) -> tuple[int, str]:
    """`trainkit [-v] optimize --task problems --no-promote [--quiet]` as `args` say; (exit status, stderr)."""
    options = [a for a in args if a != "-v"]
    done = subprocess.run([sys.executable, "-m", "dspy_trainkit", *(["-v"] if "-v" in args else []), "optimize",
                           "--task", TASK, "--no-promote", *options], cwd=folder, env=env, stdout=subprocess.PIPE,
                          stderr=stderr, text=True)
    return done.returncode, done.stderr or ""


def _on_a_terminal(folder: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    """The command with stderr on a pseudo-terminal; what it wrote there."""
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # the terminal closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        code, _ = _optimize(folder, env, *args, stderr=slave)
    finally:
        os.close(slave)
        reader.join()
        os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


def test_dspy_bars_and_info_lines_stay_out_of_stderr(tmp_path):
    data = {("math", topic, level): 3 for topic in ("fractions", "percentages") for level in ("easy", "hard")}
    with OpenAIServer(good_answer) as server:
        config = make_project(tmp_path / "p", extra=(
            f'[lm.program]\nmodel = "openai/test-model"\napi_base = "{server.url}"\ncache = false\n'
            f'api_key_env = "LOOPBACK_KEY"\n\n[optimize]\nprogram = "{PROGRAM}"\nmetric = "{METRIC}"\n'))
        with open_project(config) as kit:
            import_generated(kit, tmp_path, cell_records(data))
        env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
        env.update(LOOPBACK_KEY="loopback-key", TRAINKIT_DISABLE_PLUGINS=",".join(QUALITY_PLUGINS))
        folder = tmp_path / "p"
        code, piped = _optimize(folder, env)
        assert code == 0 and piped == ""
        code, verbose = _optimize(folder, env, "-v")
        assert code == 0 and "trainkit: INFO: Average Metric" in verbose and BAR not in verbose
        code, terminal = _on_a_terminal(folder, env, "--quiet")
        assert code == 0 and BAR not in terminal and "Average Metric" not in terminal
        assert server.counts["requests"] > 0
