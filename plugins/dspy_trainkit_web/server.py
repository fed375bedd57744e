"""`trainkit serve`: check the options, open the store, and run the dashboard with uvicorn.

The refusals happen before anything listens: a non-loopback bind without a token, and a missing `web` extra,
each end in one message saying what to do.
"""

from __future__ import annotations

import getpass
import logging
import threading
import webbrowser
from typing import Any

import attrs
import click

from dspy_trainkit.pluginkit import ConfigError, TrainkitError

from .security import allowed_hosts, is_loopback

log = logging.getLogger("dspy_trainkit.web")


@attrs.frozen
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    read_only: bool = False
    open_browser: bool = False
    token: str | None = None
    allow_hosts: tuple[str, ...] = ()
    user: str | None = None


def check_options(options: ServeOptions) -> None:
    """Refuse a bind other than loopback without a token (anyone on the network could change the data)."""
    if not is_loopback(options.host) and not options.token:
        raise ConfigError(f"--host {options.host}: serving beyond this machine needs an access token; pass "
                          "--token TOKEN or set TRAINKIT_WEB_TOKEN (or bind 127.0.0.1)")
    if options.token is not None and (len(options.token.strip()) < 16 or options.token != options.token.strip()):
        raise ConfigError("--token: use at least 16 characters, no spaces around them (e.g. python3 -c "
                          "'import secrets; print(secrets.token_urlsafe())')")


def import_web() -> None:
    try:
        import jinja2  # noqa: F401
        import multipart  # noqa: F401  (python-multipart: Starlette's form parser)
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise TrainkitError(f"trainkit serve needs the web extra ({exc.name} is missing); install it with: "
                            "pip install 'dspy-trainkit[web]'") from None


def run(state: Any, options: ServeOptions) -> None:
    check_options(options)
    import_web()
    import uvicorn

    from dspy_trainkit import open as open_kit

    from .access import KitWorker
    from .app import AppConfig, build_app

    settings, pm = state.settings(), state.plugin_manager()
    worker = KitWorker(lambda: open_kit(settings=settings, pm=pm, create=False))
    try:
        worker.run_sync(lambda kit: kit.count())  # a missing or broken store fails here, before listening
        user = options.user or _login()
        app = build_app(worker, AppConfig(hosts=frozenset(allowed_hosts(options.host, options.allow_hosts)),
                                          token=options.token, read_only=options.read_only, user=user))
        config = uvicorn.Config(app, host=options.host, port=options.port, log_level="warning",
                                access_log=False, lifespan="off", server_header=False)
        server = uvicorn.Server(config)
        threading.Thread(target=_announce, args=(server, options), daemon=True).start()
        try:
            server.run()
        except SystemExit:  # uvicorn exits when it cannot bind; say why in trainkit's words instead
            pass
        if not server.started:
            raise TrainkitError(f"could not listen on {options.host}:{options.port} (is the port in use? "
                                "try --port 0 for any free port)")
    finally:
        worker.close()


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "web"


def _announce(server: Any, options: ServeOptions) -> None:
    """Print the address once listening (with the real port when --port 0), and open a browser if asked."""
    import time

    while not server.started:
        if getattr(server, "should_exit", False):
            return
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1] if server.servers else options.port
    host = f"[{options.host}]" if ":" in options.host else options.host
    url = f"http://{host}:{port}/"
    mode = " (read-only)" if options.read_only else ""
    click.echo(f"trainkit dashboard{mode} at {url} (Ctrl-C to stop)", err=False)
    if options.token:
        click.echo("open it once with ?token=YOUR_TOKEN; later requests carry it in a cookie")
    if options.open_browser:
        webbrowser.open(url)
