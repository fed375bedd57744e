"""`trainkit doctor` and `trainkit migrate`: a healthy project exits 0; a broken config, an unreachable store
(whose password is never printed), a pending migration, a broken plugin, an unreachable LM, spill files and a
stale backup are each named with what to do; a store made by an older schema is upgraded explicitly."""

from __future__ import annotations

import importlib
import json
import os
import sys
import textwrap
import time

import peewee as pw
import pytest
from click.testing import CliRunner
from dspy_trainkit_sqlstore import schema
from dspy_trainkit_sqlstore.backend import example_row
from helpers import store_after_migrations

import dspy_trainkit as tk
from dspy_trainkit.cli.main import cli
from dspy_trainkit.operations.doctor import doctor
from dspy_trainkit.operations.migrations import migrate
from dspy_trainkit.testing import OpenAIServer

OLD_MIGRATIONS = 4  # 0001-0004: a store made before per-example values and alerts
#: what such a store lacks: the later migrations (derived from the list, so a new migration does not break these)
NEWER = [name for name, _ in schema.MIGRATIONS[OLD_MIGRATIONS:]]


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


def checks_of(result) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(result.stdout)["checks"]}


@pytest.fixture
def project():
    assert run("init").exit_code == 0


def test_healthy_project_exits_0_and_lists_every_check(project):
    result = run("doctor", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "healthy"
    checks = checks_of(result)
    assert {"settings", "plugins", "store", "migrations", "sqlite quick_check", "disk", "spill files",
            "backup"} <= set(checks)
    assert checks["sqlite quick_check"]["message"] == "PRAGMA quick_check: ok"
    assert checks["migrations"]["status"] == "ok"
    text = run("doctor")
    assert text.exit_code == 0 and text.stdout.rstrip().endswith("healthy")


def test_python_api_gives_the_same_verdict(project):
    report = doctor()
    assert report.status == "healthy" and report.exit_code == 0
    assert all(c.status in ("ok", "skipped") for c in report.checks)


def test_broken_config_is_named(project, tmp_path):
    (tmp_path / "trainkit.toml").write_text('[store]\nurl = "sqlite:///trainkit.db"\nbogus_key = 1\n')
    result = run("doctor", "--json")
    assert result.exit_code == 1
    settings = checks_of(result)["settings"]
    assert settings["status"] == "error" and "bogus_key" in settings["message"] and settings["fix"]
    assert "Traceback" not in result.output


def test_broken_config_with_db_still_checks_the_store_and_disk(project, tmp_path):
    (tmp_path / "trainkit.toml").write_text('[store]\nurl = "sqlite:///trainkit.db"\nbogus_key = 1\n')
    result = run("--db", "sqlite:///trainkit.db", "doctor", "--json")
    assert result.exit_code == 1
    checks = checks_of(result)
    assert checks["settings"]["status"] == "error" and "bogus_key" in checks["settings"]["message"]
    assert checks["store"]["status"] == "ok" and checks["migrations"]["status"] == "ok"
    assert checks["disk"]["status"] == "ok" and str(tmp_path) in checks["disk"]["message"]


def test_unreachable_store_is_named_without_its_password(tmp_path):
    url = "postgresql://trainkit:s3cret-pw@127.0.0.1:9/test"  # the discard port: nothing listens
    result = run("--db", url, "doctor", "--json")
    assert result.exit_code == 1
    store = checks_of(result)["store"]
    assert store["status"] == "error" and "cannot connect" in store["message"] and "127.0.0.1:9" in store["message"]
    assert "s3cret-pw" not in result.output
    text = run("--db", url, "doctor")
    assert text.exit_code == 1 and "s3cret-pw" not in text.output and "store" in text.output


def old_store(url: str) -> None:
    """A store as an older trainkit left it: only the first migrations applied, one example stored."""
    example = tk.Example(task="qa", inputs={"question": "old?"}, outputs={"answer": "yes"}, status="accepted")
    store_after_migrations(url, OLD_MIGRATIONS, lambda database: schema.insert_rows(
        database, "examples", schema.EXAMPLE_COLUMNS, [example_row(example)]))


def test_pending_migrations_are_reported_not_applied_then_upgraded(store_url):
    old_store(store_url)
    result = run("--db", store_url, "doctor", "--json")
    assert result.exit_code == 3, result.output  # degraded: the store works once upgraded
    migrations = checks_of(result)["migrations"]
    assert migrations["status"] == "warning"
    assert "0005_example_values" in migrations["message"] and "0006_alerts" in migrations["message"]
    assert "trainkit migrate" in migrations["fix"]
    check = run("--db", store_url, "migrate", "--check", "--json")
    assert check.exit_code == 3
    status = json.loads(check.stdout)
    assert len(status["applied"]) == OLD_MIGRATIONS and status["pending"] == NEWER
    assert status["ran"] == []  # neither doctor nor --check applied anything
    upgraded = run("--db", store_url, "migrate")
    assert upgraded.exit_code == 0, upgraded.output
    assert f"applied {len(NEWER)} migration(s)" in upgraded.stdout and "0006_alerts" in upgraded.stdout
    assert run("--db", store_url, "migrate", "--check").exit_code == 0
    assert run("--db", store_url, "doctor").exit_code == 0
    with tk.open(store_url, create=False) as kit:
        assert [ex.inputs for ex in kit.examples(task="qa")] == [{"question": "old?"}]
        assert kit.store.applied_migrations() == [name for name, _ in schema.MIGRATIONS]
        assert kit.alerts() == []  # the upgraded tables work


def test_migrate_api_applies_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old_store(url)
    first = migrate(url, check=True)
    assert first.pending == NEWER and first.ran == []
    second = migrate(url)
    assert second.ran == NEWER and second.pending == []
    assert migrate(url).ran == []


def test_store_from_a_newer_trainkit_is_broken(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    tk.open(url).close()
    database = pw.SqliteDatabase(str(tmp_path / "new.db"))
    database.execute_sql("INSERT INTO trainkit_migrations (name, applied_at) VALUES ('0099_future', 0)")
    database.close()
    result = run("--db", url, "doctor", "--json")
    assert result.exit_code == 1
    assert "0099_future" in checks_of(result)["migrations"]["message"]


BROKEN_PLUGIN = "raise RuntimeError('cannot import a missing dependency')\n"


@pytest.fixture
def broken_plugin(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "doctor_broken_pkg-0.1.dist-info").mkdir(parents=True)
    (site / "doctor_broken_pkg.py").write_text(BROKEN_PLUGIN)
    info = site / "doctor_broken_pkg-0.1.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: doctor-broken-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[dspy_trainkit]\ndoctor_broken = doctor_broken_pkg\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield
    sys.modules.pop("doctor_broken_pkg", None)


def test_broken_plugin_is_named(project, broken_plugin):
    result = run("doctor", "--json")
    assert result.exit_code == 1
    check = checks_of(result)["plugin doctor_broken"]
    assert check["status"] == "error" and "cannot import a missing dependency" in check["message"]
    assert "--disable-plugin doctor_broken" in check["fix"]
    assert checks_of(result)["store"]["status"] == "ok"  # the other checks still ran
    assert run("--strict-plugins", "doctor").exit_code == 1  # strict loading: one error, still no traceback


def lm_toml(server_url: str) -> str:
    return textwrap.dedent(f"""
        [store]
        url = "sqlite:///trainkit.db"
        [lm.generation]
        model = "openai/test-model"
        api_base = "{server_url}"
        api_key_env = "TK_DOCTOR_KEY"
        timeout = 2.0
        [tasks.qa.lm.generation]
        api_base = "http://127.0.0.1:9/v1"
    """)


def test_lms_answer_or_are_named(project, tmp_path, monkeypatch):
    monkeypatch.setenv("TK_DOCTOR_KEY", "loopback-key")
    with OpenAIServer() as server:
        (tmp_path / "trainkit.toml").write_text(lm_toml(server.url))
        result = run("doctor", "--lm", "--json")
        assert result.exit_code == 1, result.output
        checks = checks_of(result)
        assert "openai/test-model answered" in checks["lm generation"]["message"]
        # a task's override of the LM is checked too: this one points at a port where nothing listens
        override = checks["lm generation (task qa)"]
        assert override["status"] == "error" and "127.0.0.1:9" in override["message"]
        assert "[tasks.qa.lm.generation]" in override["fix"]
    # the server is stopped: nothing listens on its port any more
    result = run("doctor", "--lm", "--json")
    assert result.exit_code == 1
    lm = checks_of(result)["lm generation"]
    assert lm["status"] == "error" and "openai/test-model" in lm["message"] and "cannot be used" in lm["message"]
    assert "loopback-key" not in result.output
    assert "lm generation" not in checks_of(run("doctor", "--json"))  # without --lm no call is made


def test_spill_files_and_stale_backups_degrade(project, tmp_path):
    (tmp_path / ".trainkit").mkdir(exist_ok=True)
    (tmp_path / ".trainkit" / "collect-failed-20261206T000000-1.jsonl").write_text('{"task": "qa"}\n' * 3)
    backups = tmp_path / "backups"
    backups.mkdir()
    assert run("backup", "--dir", str(backups), "--quiet").exit_code == 0
    (old,) = backups.glob("trainkit-*.tgz")
    three_days_ago = time.time() - 3 * 86400
    os.utime(old, (three_days_ago, three_days_ago))
    # files that are not backups of this store do not make it look fresh
    (backups / "README.txt").write_text("backups of the qa store")
    (backups / "trainkit-20991231T000000Z.tgz").write_bytes(b"")  # an empty name reservation
    result = run("doctor", "--json", "--backup-dir", str(backups))
    assert result.exit_code == 3
    checks = checks_of(result)
    assert checks["spill files"]["status"] == "warning" and "3 record(s)" in checks["spill files"]["message"]
    assert "trainkit import" in checks["spill files"]["fix"]
    assert checks["backup"]["status"] == "warning" and "72." in checks["backup"]["message"]
    assert old.name in checks["backup"]["message"]
    (backups / "trainkit-20991231T000000Z.tgz").unlink()
    assert run("backup", "--dir", str(backups), "--quiet").exit_code == 0
    (tmp_path / ".trainkit" / "collect-failed-20261206T000000-1.jsonl").unlink()
    assert run("doctor", "--backup-dir", str(backups)).exit_code == 0


def test_a_hanging_lm_is_reported_as_a_timeout_naming_the_model(project, tmp_path, monkeypatch):
    from dspy_trainkit.testing.openai_server import timeout_reply

    monkeypatch.setenv("TK_DOCTOR_KEY", "loopback-key")
    # the LM's own timeout is two minutes; the server hangs 5 s then drops the connection
    with OpenAIServer(lambda _body: timeout_reply(5.0)) as server:
        (tmp_path / "trainkit.toml").write_text(lm_toml(server.url).split("[tasks")[0].replace(
            "timeout = 2.0", "timeout = 120.0"))
        result = run("doctor", "--lm", "--lm-timeout", "0.5", "--json")
    assert result.exit_code == 1, result.output
    lm = checks_of(result)["lm generation"]
    assert lm["status"] == "error" and "openai/test-model" in lm["message"] and "timeout" in lm["message"].lower()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0"])
def test_a_wait_that_is_not_a_finite_positive_number_is_refused(tmp_path, value):
    """click's FloatRange lets nan through (every comparison with it is false): `--lm-timeout nan` waited forever."""
    from click.testing import CliRunner

    from dspy_trainkit.cli.main import cli

    for option in ("--lm-timeout", "--max-backup-age"):
        if option == "--max-backup-age" and value == "0":
            continue  # a maximum age of 0 hours is allowed: every backup is old
        result = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path / 's.db'}", "doctor", option, value])
        assert result.exit_code == 2, (option, value, result.output)
        assert option in result.output


def test_an_lm_that_answers_a_byte_a_second_is_cut_off_at_the_lm_timeout(project, tmp_path, monkeypatch):
    """The LM's own timeout bounds each read; a server that drips a byte every quarter second never trips it.
    The check as a whole is bounded by --lm-timeout (the drip lasts 20 s: a check that waited for it reports a
    broken answer, not a timeout, and this fails). On a loaded machine a read may still stall past the 1 s read
    timeout first: that is a timeout too."""
    import socket
    import threading
    import time

    monkeypatch.setenv("TK_DOCTOR_KEY", "loopback-key")
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        while not stop.is_set():
            try:
                listener.settimeout(0.2)
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                for _ in range(80):
                    if stop.is_set():
                        break
                    try:
                        conn.sendall(b"X")
                    except OSError:
                        break
                    time.sleep(0.25)

    threading.Thread(target=drip, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        (tmp_path / "trainkit.toml").write_text(lm_toml(url).split("[tasks")[0])
        result = run("doctor", "--lm", "--lm-timeout", "1", "--json")
    finally:
        stop.set()
        listener.close()
    assert result.exit_code == 1, result.output
    lm = checks_of(result)["lm generation"]
    assert lm["status"] == "error", lm
    assert "no complete answer within 1 s" in lm["message"] or "timeout:" in lm["message"], lm
