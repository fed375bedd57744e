"""Small builders shared by tests."""

from __future__ import annotations


def qa(question: str, answer: str = "42", **labels) -> dict:
    """A small example record for task 'qa'."""
    return {"task": "qa", "inputs": {"question": question}, "outputs": {"answer": answer}, **labels}


#: Built-in plugins that judge quality; tests of the core disable them so that only the plugins under test
#: decide statuses and scores.
QUALITY_PLUGINS = ("lengths", "consistency", "pii", "neardup", "coherence", "relevance", "accuracy", "llm_judge")


def run_checked(*args: str):
    """`trainkit ARGS` in-process, failing the test on any traceback in its output."""
    from click.testing import CliRunner

    from dspy_trainkit.cli.main import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert "Traceback" not in result.output, result.output
    return result


def store_after_migrations(url: str, count: int, fill) -> None:
    """A store as an older trainkit left it: its first `count` migrations applied (recorded as applied), then
    `fill(database)` in the same transaction, for tests of what a newer migration does to old data."""
    import time

    from dspy_trainkit_sqlstore import schema
    from playhouse import db_url

    database = db_url.connect(url)
    models = schema.define_models(database)
    with database.atomic():
        models.Migration.create_table()
        for name, step in schema.MIGRATIONS[:count]:
            step(models)
            models.Migration.create(name=name, applied_at=time.time())
        fill(database)
    database.close()


def sigterm_mid_write(command: list[str], cwd, folder, ready: str) -> None:
    """Run `command` until it prints the line `ready` (its temporary `.part` file in `folder` then exists), send it
    SIGTERM, and check it exits 143 (128 + SIGTERM): for tests that a command cleans up when a service manager or
    `kill` stops it mid-write."""
    import signal
    import subprocess

    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == ready, process.stderr.read()
        assert any(p.name.endswith(".part") for p in folder.iterdir()), list(folder.iterdir())  # mid-write
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        process.kill()
        process.wait()
