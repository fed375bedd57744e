"""Output files (`export -o`, `import --rejects`, `backup`) go through one safe writer: a device node, socket or
folder is never replaced by a rename; a FIFO or character device is written directly; a full device is one
clear error."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import QUALITY_PLUGINS, qa

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli


@pytest.fixture
def project(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with tk.open(url, disable=QUALITY_PLUGINS) as kit:
        kit.add_many([qa(f"question {i}", f"answer {i}") for i in range(3)])
    bad = tmp_path / "in.jsonl"
    bad.write_text('{"task": "qa", "inputs": {"question": "ok"}, "outputs": {"answer": "1"}}\n{not json\n')
    return url, bad


def _commands(kind: str, url: str, bad: Path, target: Path) -> list[str]:
    base = ["--db", url] + [f"--disable-plugin={p}" for p in QUALITY_PLUGINS]
    if kind == "export":
        return [*base, "export", "-o", str(target), "--format", "jsonl"]
    if kind == "rejects":
        return [*base, "import", str(bad), "--rejects", str(target)]
    return [*base, "backup", str(target)]


def _device(tmp_path: Path, name: str, real: str) -> Path:
    """A character device to write to: a copy of `real`'s node in tmp_path when we may make one (root), else
    the real node (safe only because nothing replaces it any more)."""
    node = tmp_path / name
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.stat(real).st_rdev)
    except PermissionError:
        return Path(real)
    return node


@pytest.mark.parametrize("kind", ["export", "rejects", "backup"])
def test_a_device_node_is_written_not_replaced(project, tmp_path, kind):
    url, bad = project
    null = _device(tmp_path, "null", "/dev/null")
    result = CliRunner().invoke(cli, _commands(kind, url, bad, null))
    assert result.exit_code in (0, 3), result.output  # 3: the import rejected its bad line
    assert stat.S_ISCHR(os.stat(null).st_mode)
    assert not [p for p in null.parent.iterdir() if p.name.startswith(f".{null.name}")]


@pytest.mark.parametrize("kind", ["export", "rejects", "backup"])
def test_a_full_device_is_one_clear_error_and_stays_a_device(project, tmp_path, kind):
    url, bad = project
    full = _device(tmp_path, "full", "/dev/full")
    result = CliRunner().invoke(cli, _commands(kind, url, bad, full))
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and "No space left on device" in result.output
    assert str(full) in result.output and "Traceback" not in result.output
    assert stat.S_ISCHR(os.stat(full).st_mode)


@pytest.mark.parametrize("kind", ["export", "rejects", "backup"])
def test_a_fifo_is_written_directly(project, tmp_path, kind):
    url, bad = project
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = CliRunner().invoke(cli, _commands(kind, url, bad, fifo))
    reader.join(timeout=30)
    assert result.exit_code in (0, 3), result.output
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    data = received[0]
    if kind == "export":
        assert [json.loads(line)["inputs"]["question"] for line in data.splitlines()] == [
            f"question {i}" for i in range(3)]
    elif kind == "rejects":
        assert json.loads(data)["_trainkit_reject"]["position"].endswith("in.jsonl:line 2")
    else:
        assert data[:2] == b"\x1f\x8b"  # a gzip'd tar, as a file backup


@pytest.mark.parametrize("kind", ["export", "rejects", "backup"])
def test_a_socket_is_refused_before_any_work(project, tmp_path, kind):
    url, bad = project
    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        result = CliRunner().invoke(cli, _commands(kind, url, bad, path))
    finally:
        server.close()
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and "not a regular file" in result.output
    assert stat.S_ISSOCK(os.stat(path).st_mode)


def test_a_symlink_to_a_regular_file_stays_a_symlink(project, tmp_path):
    url, bad = project
    real = tmp_path / "real.jsonl"
    real.write_text("old\n")
    os.chmod(real, 0o640)
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    result = CliRunner().invoke(cli, _commands("export", url, bad, link))
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and len(real.read_text().splitlines()) == 3
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o640  # the replaced file keeps its mode


SLOW_EXPORT = """
import sys, time
from dspy_trainkit.cli.progress import Progress
def slow_update(self, *args, **kwargs):
    print("exporting", flush=True)  # the temporary file exists now; the test sends SIGTERM
    time.sleep(120)
Progress.update = slow_update
from dspy_trainkit.cli.main import main
sys.argv = ["trainkit", *sys.argv[1:]]
main()
"""


def test_sigterm_mid_export_removes_the_temporary_file(project, tmp_path):
    """SIGTERM (systemd stopping a unit, `kill PID`) during `trainkit export` exits 143 and leaves neither the
    output nor its temporary file, as Ctrl-C does."""
    import sys

    from helpers import sigterm_mid_write

    url, _ = project
    out = tmp_path / "out"
    out.mkdir()
    sigterm_mid_write([sys.executable, "-c", SLOW_EXPORT, "--db", url, "export", "-o", str(out / "all.jsonl")],
                      tmp_path, out, "exporting")
    assert list(out.iterdir()) == []
