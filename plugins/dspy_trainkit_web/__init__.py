"""Built-in plugin 'web': the web dashboard, `trainkit serve`.

Why a plugin: the dashboard is one more front end over the same kit API as the CLI, and proves a third party
could write one. It adds the `serve` command through `register_commands`; Starlette, Jinja2 and uvicorn (the
`web` extra) are imported only when `serve` runs, so `trainkit --help` does not pay for them.
Pages, security rules and options: docs/dashboard.md.
"""

from __future__ import annotations

from typing import Any

import click

from dspy_trainkit import hookimpl

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765


@hookimpl
def register_commands(cli: click.Group) -> None:
    from dspy_trainkit.pluginkit import pass_state

    @cli.command("serve")
    @click.option("--host", default=DEFAULT_HOST, show_default=True,
                  help="Address to bind. Anything but a loopback address needs --token.")
    @click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
                  help="Port to listen on (0: any free port, printed at start).")
    @click.option("--read-only", is_flag=True, help="Serve the pages only: no route that changes data exists.")
    @click.option("--open", "open_browser", is_flag=True, help="Open the dashboard in a web browser once up.")
    @click.option("--token", envvar="TRAINKIT_WEB_TOKEN", default=None,
                  help="Access token every request must carry (env TRAINKIT_WEB_TOKEN); required off loopback.")
    @click.option("--allow-host", "allow_hosts", multiple=True,
                  help="Another Host header name to accept (the name clients use to reach a non-loopback bind).")
    @click.option("--user", envvar="TRAINKIT_WEB_USER", default=None,
                  help="Name recorded as the actor (web:NAME) of every change made in the dashboard "
                       "(env TRAINKIT_WEB_USER; default: your login).")
    @pass_state
    def serve(state: Any, host: str, port: int, read_only: bool, open_browser: bool, token: str | None,
              allow_hosts: tuple[str, ...], user: str | None) -> None:
        """Serve the web dashboard: browse, review and curate the store in a browser."""
        from .server import ServeOptions, run

        run(state, ServeOptions(host=host, port=port, read_only=read_only, open_browser=open_browser,
                                token=token or None, allow_hosts=allow_hosts, user=user))
