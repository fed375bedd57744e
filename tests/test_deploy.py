"""deploy/: the systemd units pass `systemd-analyze verify`; every trainkit command the units, the compose file
and the Containerfile run is a real command whose options parse; the env file template holds no secrets and its
settings load; and, against PostgreSQL, the units' commands run as subprocesses in deployment order (migrate,
import, watch, backup with retention, verify, metrics textfile), including a SIGKILL of the watcher (while idle
and in the middle of a run) and a restart that loses nothing."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from helpers import QUALITY_PLUGINS
from incremental_program import record

import dspy_trainkit as tk
from dspy_trainkit import load_settings
from dspy_trainkit.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").iterdir())
INSTALLED = "/opt/trainkit/bin/trainkit"  # where the units expect the console script
TRAINKIT = Path(sys.executable).parent / "trainkit"
SECRET_NAMES = re.compile(r"KEY|PASSWORD|SECRET|TOKEN|PASSPHRASE", re.I)


def render(unit: Path, folder: Path, executable: str | Path = TRAINKIT) -> Path:
    """The unit with its ExecStart pointing at this checkout's console script (what an installer does)."""
    target = folder / unit.name
    target.write_text(unit.read_text().replace(INSTALLED, str(executable)))
    return target


def unit_commands() -> list[tuple[str, list[str]]]:
    """(unit, trainkit arguments) of every Exec line of every unit."""
    found = []
    for unit in UNITS:
        for line in unit.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.startswith("Exec"):
                argv = shlex.split(value)
                assert argv[0] == INSTALLED, f"{unit.name}: {line} does not run {INSTALLED}"
                found.append((unit.name, argv[1:]))
    return found


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "container" / "compose.yaml").read_text())


def compose_commands() -> list[tuple[str, list[str]]]:
    """(service, trainkit arguments) of every trainkit service (the image's entrypoint is `trainkit`, and a
    shell entrypoint's `trainkit ...` commands)."""
    found = []
    for name, service in compose()["services"].items():
        if service.get("image", "").startswith("docker.io/library/postgres"):
            continue
        if service.get("entrypoint"):
            for script in service["command"]:
                found += [(name, shlex.split(match)) for match in re.findall(r"\btrainkit ([^;&|]+)", script)]
        else:
            found.append((name, list(service["command"])))
    containerfile = (DEPLOY / "container" / "Containerfile").read_text()
    found.append(("Containerfile CMD", json.loads(re.search(r"^CMD (\[.*\])$", containerfile, re.M).group(1))))
    found.append(("Containerfile HEALTHCHECK",
                  json.loads(re.search(r"HEALTHCHECK .*CMD (\[.*\])$", containerfile, re.M).group(1))[1:]))
    return found


def has_command(name: str) -> bool:
    return CliRunner().invoke(cli, [name, "--help"]).exit_code == 0


def test_units_pass_systemd_analyze_verify(tmp_path):
    rendered = [render(unit, tmp_path) for unit in UNITS]
    assert {p.suffix for p in rendered} == {".service", ".timer"} and len(rendered) == 4
    result = subprocess.run(["systemd-analyze", "verify", *map(str, rendered)], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ours = [line for line in result.stderr.splitlines() if "trainkit" in line]
    assert ours == [], ours  # no warnings either (an unknown key is only a warning)
    broken = tmp_path / "broken"
    broken.mkdir()
    missing = render(DEPLOY / "systemd" / "trainkit-backup.service", broken, "/nowhere/bin/trainkit")
    failed = subprocess.run(["systemd-analyze", "verify", str(missing)], capture_output=True, text=True)
    assert failed.returncode != 0 and "/nowhere/bin/trainkit" in failed.stderr  # the check does check


def test_timer_starts_the_backup_service_with_retention():
    timer = (DEPLOY / "systemd" / "trainkit-backup.timer").read_text()
    assert "Unit=trainkit-backup.service" in timer and "Persistent=true" in timer
    [(_, args)] = [(u, a) for u, a in unit_commands() if u == "trainkit-backup.service" and a[0] == "backup"]
    assert "--dir" in args and "--keep" in args


@pytest.mark.parametrize(("where", "args"), unit_commands() + compose_commands(),
                         ids=lambda value: value if isinstance(value, str) else " ".join(value))
def test_every_deployed_command_exists_and_its_options_parse(where, args):
    """`trainkit ARGS --help`: click parses every option before acting on --help, so an unknown command or
    option fails here."""
    command = next(a for a in args if not a.startswith("-") and a not in ("json", "human"))
    assert command != "serve" or has_command("serve"), "the dashboard plugin (web) does not load"
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, f"{where}: trainkit {' '.join(args)}: {result.output}"


def test_compose_file_is_consistent():
    data = compose()
    services = data["services"]
    assert {"postgres", "dashboard", "watcher"} <= set(services)
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in data["volumes"], f"{name}: volume {volume} is not declared"
        build = service.get("build")
        if build:
            context = (DEPLOY / "container" / build["context"]).resolve()
            assert context == ROOT and (context / build["dockerfile"]).is_file()
    watcher = services["watcher"]
    assert watcher["stop_signal"] == "SIGINT"  # like Ctrl-C: a run cut short is recorded as interrupted
    extras = re.search(r'pip install "/tmp/src\[(\w+)\]"', (DEPLOY / "container" / "Containerfile").read_text())
    assert extras and f"\n{extras.group(1)} =" in (ROOT / "setup.cfg").read_text()


def env_template() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "trainkit.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_env_template_has_no_secrets_and_loads(tmp_path):
    values = env_template()
    assert "TRAINKIT_STORE_URL" in values
    assert not [name for name in values if SECRET_NAMES.search(name)]
    assert not [v for v in values.values() if re.search(r"://[^/@]*:[^/@]*@", v)]  # no user:password@ in URLs
    (tmp_path / "trainkit.toml").write_text("")
    settings = load_settings(env={**values, "TRAINKIT_CONFIG": str(tmp_path / "trainkit.toml")})
    assert settings.store_url == values["TRAINKIT_STORE_URL"] and settings.strict_plugins


# -- the units' commands against PostgreSQL ----------------------------------------------------------------------

TOML = """
[plugins]
disable = [{disabled}]

[tasks.qa]
inputs = ["question"]
outputs = ["answer"]

[lm.program]
model = "openai/test-model"
api_base = "{api_base}"
api_key_env = "TK_DEPLOY_LM_KEY"
cache = false

[optimize]
optimizer = "labeled"
program = "incremental_program:QA"
metric = "incremental_program:exact"

[optimize.triggers]
new_accepted = 5
"""


def argv_of(unit: str, first: str) -> list[str]:
    """The trainkit arguments of `unit`'s Exec line whose command is `first`."""
    return next(args for name, args in unit_commands() if name == unit and first in args)


class Deployment:
    """A project folder, the env file template's settings pointing at a fresh database, and the units'
    commands run as subprocesses."""

    def __init__(self, folder: Path, store_url: str, api_base: str):
        self.folder = folder
        folder.mkdir()
        disabled = ", ".join(f'"{name}"' for name in QUALITY_PLUGINS)
        (folder / "trainkit.toml").write_text(TOML.format(disabled=disabled, api_base=api_base))
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("TRAINKIT_")}, **env_template(),
                    "TRAINKIT_STORE_URL": store_url, "TRAINKIT_CONFIG": str(folder / "trainkit.toml"),
                    "TK_DEPLOY_LM_KEY": "loopback", "LITELLM_LOCAL_MODEL_COST_MAP": "true",
                    "PYTHONPATH": str(Path(__file__).parent)}

    def argv(self, args: list[str]) -> list[str]:
        return [str(TRAINKIT), *args]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(self.argv(list(args)), cwd=self.folder, env=self.env, capture_output=True,
                                text=True, timeout=300)
        if check:
            assert result.returncode == 0, f"trainkit {' '.join(args)}: {result.stderr}"
        return result

    def start(self, args: list[str]) -> subprocess.Popen:
        return subprocess.Popen(self.argv(args), cwd=self.folder, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def kit(self) -> tk.Kit:
        return tk.open(settings=load_settings(env=self.env))

    def add(self, numbers) -> None:
        data = self.folder / f"batch{min(numbers)}.jsonl"
        data.write_text("".join(json.dumps(record(i)) + "\n" for i in numbers))
        self.run("import", str(data))


def wait_for(condition, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def runs(deploy: Deployment) -> list:
    with deploy.kit() as kit:
        return sorted(kit.runs("qa"), key=lambda r: r.created_at)


@pytest.mark.postgres
def test_units_commands_run_against_postgres_and_a_killed_watcher_loses_nothing(postgres_database_url, tmp_path):
    from dspy_trainkit.testing import OpenAIServer, by_inputs, dspy_reply

    answers = by_inputs([({"question": f"question {i:03d}"}, dspy_reply({"answer": f"answer {i:03d}"}))
                         for i in range(40)])
    slow = {"on": False}

    def responder(body):
        if slow["on"]:
            time.sleep(0.5)  # a run that takes long enough to be killed in the middle
        return answers(body)

    with OpenAIServer(responder) as server:
        deploy = Deployment(tmp_path / "srv", postgres_database_url, server.url)
        # deploy: the schema first (the units' ExecStartPre refuses to start on pending migrations)
        refused = deploy.run(*argv_of("trainkit-watch.service", "migrate"), check=False)
        assert refused.returncode == 1 and "run `trainkit init` first" in refused.stderr
        deploy.run("init")  # with the project's trainkit.toml there, only the store is made
        checked = deploy.run(*argv_of("trainkit-watch.service", "migrate"))
        assert "is current" in checked.stdout
        deploy.add(range(10))

        watch = [a if a != "9465" else "0" for a in argv_of("trainkit-watch.service", "watch")]
        watcher = deploy.start(watch)
        try:
            wait_for(lambda: [r.status for r in runs(deploy)] == ["succeeded"], what="the first run")
            watcher.send_signal(signal.SIGKILL)  # idle between steps
            watcher.wait(timeout=30)
            deploy.add(range(10, 16))  # data arrives while the watcher is down
            slow["on"] = True
            watcher = deploy.start(watch)  # restarted (Restart=always)
            wait_for(lambda: [r.status for r in runs(deploy)][-1:] == ["running"], what="the second run to start")
            time.sleep(1.0)
            watcher.send_signal(signal.SIGKILL)  # in the middle of a run
            watcher.wait(timeout=30)
            # read after the kill, the run whose process is gone shows (and is recorded) as interrupted
            assert [r.status for r in runs(deploy)] == ["succeeded", "interrupted"]
            slow["on"] = False
            watcher = deploy.start(watch)
            wait_for(lambda: [r.status for r in runs(deploy)] == ["succeeded", "interrupted", "succeeded"],
                     what="the restarted watcher to re-optimize at once")
        finally:
            watcher.send_signal(signal.SIGINT)  # KillSignal=SIGINT: stops cleanly
            out, err = watcher.communicate(timeout=60)
        # 0 when stopped between runs; 130 when the stop lands in the last run's final steps (its result is
        # stored first, and stays: the statuses below)
        assert watcher.returncode in (0, 130), err
        assert [r.status for r in runs(deploy)] == ["succeeded", "interrupted", "succeeded"]

    with deploy.kit() as kit:
        assert kit.count(status="accepted") == 16  # nothing lost
        final = runs(deploy)[-1]
        assert kit.champion("qa") is not None  # kept, or replaced by a better run
        assert set(final.train_ids + final.val_ids + final.dev_ids) == {e.id for e in kit.examples(task="qa")}
        assert [e.kind for e in kit.events()].count("optimization_run") == 2

    # the backup unit: backup with retention, then the textfile; then a verify and a restore as after a lost host
    backups = tmp_path / "backups"
    backups.mkdir()
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    backup = [a.replace("/var/backups/trainkit", str(backups)) for a in argv_of("trainkit-backup.service", "backup")]
    metrics = [a.replace("/var/backups/trainkit", str(backups))
               .replace("/var/lib/prometheus/node-exporter", str(textfile))
               for a in argv_of("trainkit-backup.service", "metrics")]
    for _ in range(3):
        deploy.run(*[a if a != "14" else "2" for a in backup])
        deploy.run(*metrics)
    kept = sorted(backups.iterdir())
    assert len(kept) == 2
    scrape = (textfile / "trainkit.prom").read_text()
    assert re.search(r"^trainkit_backup_age_seconds \d", scrape, re.M)
    verified = json.loads(deploy.run("backup", "verify", str(kept[-1]), "--json").stdout)
    assert verified["counts"]["examples"] == 16 and verified["counts"]["runs"] == 3
    shutil.rmtree(deploy.folder / "programs")  # the lost host's project files
    restored = f"sqlite:///{tmp_path / 'restored.db'}"
    deploy.run("restore", str(kept[-1]), "--into", restored)
    with tk.open(restored) as kit:
        assert kit.count(status="accepted") == 16 and kit.champion("qa") is not None
        assert Path(kit.champion("qa").program_path).is_file()  # the champion's program came back with it
