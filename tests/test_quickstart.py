"""The README's first command: examples/quickstart/run.sh runs the whole loop offline, and re-runs safely."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "quickstart" / "run.sh"


def run_quickstart(folder: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["bash", str(SCRIPT), str(folder)], capture_output=True, text=True, env=env,
                          timeout=600, check=False)


def trainkit_json(folder: Path, *args: str) -> object:
    out = subprocess.run([str(Path(sys.executable).parent / "trainkit"), *args, "--json"], cwd=folder,
                         capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}).stdout
    return json.loads(out)


@pytest.mark.slow
def test_quickstart_runs_the_whole_loop_and_can_be_run_again(tmp_path):
    demo = tmp_path / "demo"
    first = run_quickstart(demo)
    assert first.returncode == 0, first.stdout + first.stderr
    qa = trainkit_json(demo, "stats")
    assert qa["total"] == 6 and qa["by_status"] == {"accepted": 5, "rejected": 1}
    problems = demo / "problems"
    trainset = json.loads((problems / "trainset.json").read_text())
    examples = trainset["examples"] if isinstance(trainset, dict) else trainset
    assert len(examples) == 39
    runs = trainkit_json(problems, "runs")
    assert len(runs) == 1 and runs[0]["champion"] and runs[0]["snapshot"] == "v1"
    assert runs[0]["score"] > runs[0]["baseline_score"]  # the stand-in answers better with the demos
    assert Path(runs[0]["program_path"]).is_file()

    again = run_quickstart(demo)  # nothing is stored twice; a second run is recorded against the same snapshot
    assert again.returncode == 0, again.stdout + again.stderr
    assert trainkit_json(demo, "stats")["total"] == 6
    assert trainkit_json(problems, "stats")["total"] == 39
    again_runs = trainkit_json(problems, "runs")
    assert [r["snapshot"] for r in again_runs] == ["v1", "v1"]
    assert [r["champion"] for r in again_runs] == [True, False]  # the same score again: the champion stays
    assert again_runs[1]["score"] == runs[0]["score"]  # same snapshot, same split, same answers
