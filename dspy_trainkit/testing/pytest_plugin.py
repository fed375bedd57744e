"""The pytest fixtures dspy-trainkit gives plugin authors (loaded through the `pytest11` entry point).

`trainkit_kit` is a factory: `trainkit_kit(plugins=[...], extra=[(name, obj)], toml="...")` returns a
hermetic kit on the test's `tmp_path` (see `dspy_trainkit.testing.kits`); every kit it made is closed after
the test. Importing this module costs nothing: the kit machinery loads when the fixture is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture
def trainkit_kit(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Make hermetic kits on `tmp_path`: only the named plugins, no TRAINKIT_* variables, closed afterwards."""
    import os

    from .kits import open_hermetic_kit

    for name in list(os.environ):
        if name.startswith("TRAINKIT_") and not name.startswith("TRAINKIT_TEST_"):
            monkeypatch.delenv(name)
    kits: list[Any] = []

    def make(**options: Any) -> Any:
        kit = open_hermetic_kit(tmp_path / f"kit{len(kits)}", **options)
        kits.append(kit)
        return kit

    yield make
    for kit in kits:
        kit.close()
