"""Hermetic kits for plugin tests: a temporary SQLite store, only the named plugins, no user environment.

A plugin author's test should not depend on which other plugins happen to be installed, on a `trainkit.toml`
in the current folder or on `TRAINKIT_*` variables of the shell. `hermetic_kit` opens a kit with exactly the
plugins it is given; the `trainkit_kit` pytest fixture (registered through the `pytest11` entry point, so it is
there as soon as dspy-trainkit is installed) does the same on `tmp_path` and closes the kit after the test:

    def test_my_validator(trainkit_kit):
        kit = trainkit_kit(plugins=["basic_checks"], extra=[("mine", my_plugin)])
        stored = kit.add(task="qa", inputs={"question": "?"}, outputs={"answer": "4"})
        assert stored.status == "accepted"
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..kit import Kit


def open_hermetic_kit(folder: Path | str, *, plugins: Sequence[str] = (), extra: Iterable[tuple[str, Any]] = (),
                      toml: str = "", strict: bool = True) -> Kit:
    """A kit on `folder/trainkit.db` with only the installed plugins named in `plugins` (the store plugin is
    always loaded), the `(name, object)` pairs of `extra` registered beside them, and `toml` as the
    project's trainkit.toml (for example `'[plugin.mine]\\nlevel = 2'`). No environment variable
    and no trainkit.toml outside `folder` is read. Plugin loading is strict: a broken plugin fails the test."""
    import attrs

    from ..kit import Kit
    from ..plugin_manager import make_plugin_manager
    from ..settings import load_settings
    from ..store import open_store

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "trainkit.toml"
    config.write_text(toml, encoding="utf-8")
    loaded = load_settings(config, env={})
    loaded = attrs.evolve(loaded, store_url="sqlite:///" + str(folder / "trainkit.db"))
    pm = make_plugin_manager(load=list(plugins), strict=strict, extra_plugins=list(extra))
    return Kit(loaded, pm, open_store(loaded.store_url, loaded, pm, create=True))


@contextmanager
def hermetic_kit(folder: Path | str, **options: Any) -> Iterator[Kit]:
    """`open_hermetic_kit` as a context manager that closes the kit."""
    kit = open_hermetic_kit(folder, **options)
    try:
        yield kit
    finally:
        kit.close()
