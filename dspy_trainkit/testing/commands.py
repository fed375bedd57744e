"""Running the `trainkit` command line inside a test, as a plugin author checks a command their plugin adds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def run_cli(args: Sequence[str], *, input: str | None = None,  # noqa: A002
            env: Mapping[str, str] | None = None) -> Any:
    """Invoke `trainkit ARGS` in this process (click's CliRunner) and return its result (`exit_code`,
    `stdout`, `stderr`, `output`). Plugins are discovered as for the real command, so an installed plugin's
    commands are there; exceptions end up in `result.exception` as the real command would report them."""
    from click.testing import CliRunner

    from ..cli.main import cli

    return CliRunner().invoke(cli, list(args), input=input, env=dict(env) if env else None)
