"""The package as users get it: the wheel holds every package, installs non-editable and runs the quick start.

Every other test runs against the editable checkout, which hid a wheel missing three subpackages. These tests
build the wheel from a copy of the source (so the checkout gets no build/ folder) and check it against the
source tree, install it into a fresh virtual environment, and run the commands a new user runs first. A last
test runs a checkout with no install metadata at all (PYTHONPATH only), where the essential built-ins must
still load.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_PARTS = ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "dspy_trainkit", "plugins")


def source_packages() -> set[str]:
    """Every importable package of the source tree: the core's and the built-in plugins'."""
    found = set()
    for base, root in ((ROOT, ROOT / "dspy_trainkit"), *((ROOT / "plugins", p) for p in (ROOT / "plugins").iterdir())):
        for init in root.rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(base).parts))
    return found


def declared_entry_points() -> dict[str, str]:
    import configparser

    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    lines = parser["options.entry_points"]["dspy_trainkit"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=", 1)) for line in lines)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built from a copy of the source the way `pip wheel .` builds it."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    source.mkdir()
    for part in SOURCE_PARTS:
        path = ROOT / part
        if path.is_dir():
            shutil.copytree(path, source / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
        else:
            shutil.copy2(path, source / part)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                             "--disable-pip-version-check", "-q", "-w", str(base / "dist"), str(source)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = (base / "dist").glob("dspy_trainkit-*.whl")
    return built


def test_wheel_holds_every_package_and_entry_point(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    packaged = {name[: -len("/__init__.py")].replace("/", ".") for name in names if name.endswith("/__init__.py")}
    assert packaged == source_packages()
    files = {name for name in names if ".dist-info/" not in name}
    source_files = {str(p.relative_to(ROOT)) for p in (ROOT / "dspy_trainkit").rglob("*") if _shipped(p)} | {
        str(p.relative_to(ROOT / "plugins")) for p in (ROOT / "plugins").rglob("*") if _shipped(p)}
    # every module and every data file (templates, vendored static files, py.typed) a package folder holds:
    # a dashboard whose templates stayed behind crashed on every installed copy
    assert files == source_files
    for name, module in declared_entry_points().items():
        assert f"{name} = {module}" in entry_points
    assert "trainkit = dspy_trainkit.cli.entry:main" in entry_points


def _shipped(path: Path) -> bool:
    return path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")


def test_every_builtin_plugin_folder_is_registered():
    """A plugin folder without an entry point would be packaged but never load."""
    folders = {p.name for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").exists()}
    assert set(declared_entry_points().values()) == folders


@pytest.mark.slow
def test_wheel_installs_non_editable_and_runs_the_quick_start(wheel, tmp_path):
    """What `pip install dspy-trainkit` gives: a fresh venv, the wheel with its dependencies, then the first
    commands a user runs, from a folder that is not the checkout."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    result = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                             f"{wheel}[web]"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINKIT_", "PYTHON", "VIRTUAL_ENV"))}
    environ["PATH"] = f"{bin_dir}{os.pathsep}{environ.get('PATH', '')}"
    project = tmp_path / "project"
    project.mkdir()

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(list(args), cwd=project, env=environ, capture_output=True, text=True, timeout=600)
        if check:
            assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done

    location = run("python", "-c", "import dspy_trainkit, dspy_trainkit_sqlstore; "
                   "print(dspy_trainkit.__file__); print(dspy_trainkit_sqlstore.__file__)").stdout.split()
    assert all(str(env_dir) in path for path in location), location  # the installed copy, not the checkout
    assert "Usage: trainkit" in run("trainkit", "--help").stdout
    assert "Usage: trainkit" in run("python", "-m", "dspy_trainkit", "--help").stdout
    run("trainkit", "init", "--task", "qa", "--signature", "question -> answer")
    (project / "in.jsonl").write_text('{"question": "What is 2 + 2?", "answer": "4"}\n'
                                      '{"question": "What is 3 + 3?", "answer": "6"}\n', encoding="utf-8")
    assert "imported 2" in run("trainkit", "import", "in.jsonl").stdout
    run("trainkit", "export", "--format", "jsonl", "-o", "out.jsonl")
    exported = [json.loads(line) for line in (project / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted((r["task"], r["inputs"]["question"], r["outputs"]["answer"]) for r in exported) == [
        ("qa", "What is 2 + 2?", "4"), ("qa", "What is 3 + 3?", "6")]
    loaded = run("trainkit", "plugins", "--json").stdout
    assert '"status": "failed"' not in loaded and '"sqlstore"' in loaded
    assert_dashboard_serves(project, environ)

    quick = run("bash", str(ROOT / "examples" / "quickstart" / "run.sh"), str(tmp_path / "demo"))
    assert "champion" in quick.stdout.lower()
    assert (tmp_path / "demo" / "problems" / "trainset.json").is_file()

    # what `tox -e external-plugin` does: a third-party plugin installed beside the wheel, its own tests run
    # against the installed pair (the trainkit_kit fixture comes from the wheel's pytest11 entry point)
    sample = tmp_path / "sample_plugin"
    shutil.copytree(ROOT / "tests" / "sample_plugin", sample,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".tox"))
    run("python", "-m", "pip", "install", "-q", "--disable-pip-version-check", "pytest>=8")
    run("python", "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", str(sample))
    environ["TRAINKIT_REQUIRE_SAMPLE_PLUGIN"] = "1"
    tested = run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(sample),
                 str(sample / "tests"), check=False)
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
    assert " passed" in tested.stdout and "skipped" not in tested.stdout


def assert_dashboard_serves(project: Path, environ: dict[str, str]) -> None:
    """The installed dashboard answers its pages and static files: its templates and vendored files travel in
    the wheel (they once stayed behind, and `trainkit serve` crashed on every installed copy)."""
    import urllib.request

    server = subprocess.Popen(["trainkit", "serve", "--port", "0"], cwd=project, env=environ, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = server.stdout.readline()
        assert "trainkit dashboard at http://127.0.0.1:" in line, line + server.stderr.read()
        url = line.split(" at ", 1)[1].split()[0]
        for path, expected in (("", b"Overview"), ("examples", b"What is 2 + 2?"), ("static/htmx.min.js", b"htmx")):
            with urllib.request.urlopen(url + path, timeout=60) as response:
                assert response.status == 200 and expected in response.read(), path
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_checkout_without_install_metadata_still_loads_the_essential_builtins(tmp_path):
    """A copy of the source on PYTHONPATH, with no dist-info of dspy-trainkit anywhere on the path: the store,
    formats, DSPy conversion and basic checks load by module name, and an import works."""
    checkout = tmp_path / "checkout"
    for part in ("dspy_trainkit", "plugins"):
        shutil.copytree(ROOT / part, checkout / part, ignore=shutil.ignore_patterns("__pycache__"))
    project = tmp_path / "project"
    project.mkdir()
    (project / "in.jsonl").write_text('{"question": "q?", "answer": "a"}\n', encoding="utf-8")
    script = """
import importlib.metadata as metadata, sys
real = metadata.entry_points
# the checkout has no metadata: hide the editable install's, as a plain PYTHONPATH run would not have it
ours = lambda e: e.dist is not None and e.dist.metadata["Name"] == "dspy-trainkit"
metadata.entry_points = lambda **kw: [e for e in real(**kw) if not ours(e)]
import dspy_trainkit as tk
assert tk.__file__.startswith(sys.argv[1]), tk.__file__
with tk.open("sqlite:///kit.db") as kit:
    loaded = sorted(i.name for i in kit.pm.plugin_infos() if i.status == "loaded")
    report = kit.import_files(["in.jsonl"], task="qa", input_fields=["question"])
    print(",".join(loaded), report.imported)
    import dspy_trainkit_sqlstore
    print(dspy_trainkit_sqlstore.__file__)
"""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}
    # -S: no site processing, so the editable install's import hook (a .pth file) is not there either; the
    # dependencies come from site-packages, put on the path by hand
    environ["PYTHONPATH"] = os.pathsep.join([str(checkout), sysconfig.get_paths()["purelib"]])
    result = subprocess.run([sys.executable, "-S", "-c", script, str(checkout)], cwd=project, env=environ,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    names, imported, plugin_file = result.stdout.split()
    assert set(names.split(",")) >= {"sqlstore", "json", "jsonl", "csv", "yaml", "dspy", "basic_checks"}
    assert imported == "1"
    assert plugin_file.startswith(str(checkout / "plugins"))
