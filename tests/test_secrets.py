"""No secret reaches an output, a stored table or a backup: planted store passwords, API keys (in a variable
whose name does not look secret, in credentials inside `api_base`, echoed back by the provider's errors) are
looked for in everything the commands print, every row of the store and every member of its backup."""

from __future__ import annotations

import logging
import sqlite3
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from optimize_support import PROGRAM, TASK, make_project, open_project
from test_generation_bootstrap import run_cli, unique_answers, write_project
from test_optimize import fill

from dspy_trainkit.cli.main import cli
from dspy_trainkit.generation.calls import LMCalls
from dspy_trainkit.optimization.runs import OptimizationError
from dspy_trainkit.redaction import RedactingFilter, redact
from dspy_trainkit.testing import OpenAIServer, input_fields, make_lm, server_error

KEY_VAR = "PROJECT_LLM_CRED"  # named by api_key_env; nothing in the name says it is secret
KEY = "planted-9f8e7d6c5b4a3921"
SHAPED = "sk-proj-PLANTEDabcdef0123456789"
PASSWORD = "Planted-Pw-5e4d3c2b"
SECRETS = (KEY, SHAPED, PASSWORD)


def leaks(text: str | bytes, where: str) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return [f"{secret} in {where}" for secret in SECRETS if secret in text]


def sqlite_rows(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def backup_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}


@pytest.mark.parametrize("text, shown", [
    ("postgresql://user:pw@db.example:5432/tk?sslmode=require", "postgresql://user:***@db.example:5432/tk"),
    ("store URL 'postgresq://u:p@ss@h/d': unknown scheme", "store URL 'postgresq://u:***@h/d': unknown scheme"),
    ("postgresql//u:pw@h/d", "postgresql//u:***@h/d"),
    ("http://h/v1?api_key=abc&x=1 token=xyz password=p", "http://h/v1?api_key=***&x=1 token=*** password=***"),
    ("Incorrect API key provided: sk-proj-abcdef0123456789xyz.", "Incorrect API key provided: ***."),
    ("headers: Authorization: Bearer abc.def-123", "headers: Authorization: Bearer ***"),
    ("failed to connect to apiuser:pw-1@127.0.0.1:80: refused", "failed to connect to apiuser:***@127.0.0.1:80"),
    ("sqlite:///s.db, task-abcdefghijklmnopqrstuv at 10:30", "sqlite:///s.db, task-abcdefghijklmnopqrstuv at 10:30"),
])
def test_redact_masks_each_kind_of_secret(text, shown):
    assert redact(text).startswith(shown)


def test_values_of_secret_variables_are_masked_in_text_and_log_lines(monkeypatch):
    monkeypatch.setenv("TRAINKIT_BACKUP_KEY", "the-backup-key-123")
    assert redact("key the-backup-key-123 leaked") == "key *** leaked"
    record = logging.LogRecord("dspy_trainkit", logging.WARNING, __file__, 1, "failed: %s", ("the-backup-key-123",),
                               None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "failed: ***"


def test_no_planted_secret_in_outputs_stored_tables_or_backups(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_VAR, KEY)
    monkeypatch.setattr(LMCalls, "DEFAULT_BACKOFF", 0.01)
    echo = f"invalid key {KEY} (also tried {SHAPED}); Authorization: Bearer {KEY}"
    good = unique_answers()

    def respond(body):  # the provider echoes the key it was given, for one topic
        return server_error(echo) if input_fields(body).get("topic") == "topic1" else good(body)

    found: list[str] = []
    with OpenAIServer(respond) as server:
        base = server.url.replace("http://", f"http://apiuser:{PASSWORD}@")
        write_project(tmp_path, base, retries=0)
        text = (tmp_path / "trainkit.toml").read_text().replace('api_key_env = "TK_BOOT_KEY"',
                                                                   f'api_key_env = "{KEY_VAR}"')
        (tmp_path / "trainkit.toml").write_text(text)
        assert f'api_key_env = "{KEY_VAR}"' in text
        for args in [("lm", "check"), ("lm", "check", "--json"), ("config", "show"), ("config", "show", "--json")]:
            code, out, err = run_cli(tmp_path, *args)  # credentials in api_base: the client cannot connect
            found += leaks(out + err, f"`trainkit {' '.join(args)}` (credentials in api_base)")
        (tmp_path / "trainkit.toml").write_text(text.replace(base, server.url))
        runs = [("lm", "check"), ("lm", "check", "--json"), ("bootstrap", "--task", "problems"),
                ("bootstrap", "--task", "problems", "--json"), ("config", "show"), ("config", "show", "--json"),
                ("show", "nothing-like-this"), ("list",), ("stats",), ("backup", str(tmp_path / "b.tgz"), "--portable"),
                ("--db", f"postgresq://user:{PASSWORD}@127.0.0.1:1/tk", "list"),
                ("--db", f"postgresql//user:{PASSWORD}@127.0.0.1:1/tk", "list")]
        codes = []
        for args in runs:
            code, out, err = run_cli(tmp_path, *args)
            codes.append(code)
            found += leaks(out + err, f"`trainkit {' '.join(args)}`")
    assert codes[2] == 4 and codes[-1] == 1  # the echoing topic failed its slots; a bad URL is an error
    found += leaks(sqlite_rows(tmp_path / "trainkit.db"), "the store's tables")
    found += [f"{leak} (member)" for name, data in backup_members(tmp_path / "b.tgz").items()
              for leak in leaks(data, f"backup member {name}")]

    # an optimization run whose metric fails with the provider's echo: the run record keeps the error
    config = make_project(tmp_path / "opt", f"sqlite:///{tmp_path / 'opt.db'}")
    with open_project(config) as kit:
        fill(kit, tmp_path)

        def metric(example, prediction, trace=None):
            raise RuntimeError(echo)

        with OpenAIServer(unique_answers()) as server, pytest.raises(OptimizationError) as info:
            kit.optimize(TASK, program=PROGRAM, metric=metric, lm=make_lm(server))
        kit.backup(tmp_path / "opt.tgz", portable=True)
        assert kit.runs(TASK)[0].status == "failed" and "***" in kit.runs(TASK)[0].error
    found += leaks(sqlite_rows(tmp_path / "opt.db"), "the optimization store's tables")
    found += [leak for name, data in backup_members(tmp_path / "opt.tgz").items()
              for leak in leaks(data, f"optimization backup member {name}")]
    result = CliRunner().invoke(cli, ["--config", str(config), "runs"])
    found += leaks(result.output, "`trainkit runs`") + leaks(str(info.value), "OptimizationError")
    assert found == []


@pytest.mark.postgres
def test_a_store_password_is_never_printed_stored_or_backed_up(postgres_schema_url, tmp_path):
    url = postgres_schema_url.replace("://postgres@", f"://postgres:{PASSWORD}@", 1)
    assert PASSWORD in url
    runner = CliRunner()
    found: list[str] = []
    project = tmp_path / "project"
    commands = [["init", "--dir", str(project), "--db", url],
                ["--db", url, "add", "-t", "qa", "-i", "question=What is 2+2?", "-o", "answer=4"],
                ["--db", url, "show", "nothing-like-this"], ["--db", url, "list"],
                ["--db", url, "snapshot", "create", "v1", "--status", "accepted"],
                ["--db", url, "config", "show"], ["--db", url, "config", "show", "--json"],
                ["--db", url, "backup", str(tmp_path / "pg.tgz")],
                ["--db", url.replace("postgresql://", "postgresq://"), "list"],
                ["--db", url.replace("postgresql://", "postgresql:/"), "list"]]
    for args in commands:
        result = runner.invoke(cli, args)
        found += leaks(result.output, f"`trainkit {' '.join(a.replace(url, 'URL') for a in args)}`")
    assert (tmp_path / "pg.tgz").exists()
    found += [leak for name, data in backup_members(tmp_path / "pg.tgz").items()
              for leak in leaks(data, f"backup member {name}")]
    import psycopg2

    schema = postgres_schema_url.rsplit("search_path%3D", 1)[1]
    conn = psycopg2.connect(postgres_schema_url.split("?")[0])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))
            for (table,) in cur.fetchall():
                cur.execute(f'SELECT * FROM {schema}."{table}"')
                found += leaks(repr(cur.fetchall()), f"table {table}")
    finally:
        conn.close()
    assert found == []
