"""Running the `trainkit` command line inside a test, as a plugin author checks a command their plugin adds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def run_cli(args: Sequence[str], *, input: str | None = None,  # noqa: A002
            env: Mapping[str, str] | None = None) -> Any:
    """Invoke `trainkit ARGS` in this process (click's CliRunner) and return its result (`exit_code`,
    `stdout`, `stderr`, `output`). Plugins are discovered as for the real command, so an installed plugin's
    commands are there; exceptions end up in `result.exception` as the real command would report them.

    The developer's `TRAINKIT_*` variables are hidden from the command (a test must not write to the store
    `TRAINKIT_STORE_URL` names); `env` sets the ones a test wants. The command runs in the current folder:
    `monkeypatch.chdir(tmp_path)` first."""
    import os

    from click.testing import CliRunner

    from ..cli.main import cli

    hidden: dict[str, str | None] = {name: None for name in os.environ if name.startswith("TRAINKIT_")}
    return CliRunner().invoke(cli, list(args), input=input, env={**hidden, **dict(env or {})})
