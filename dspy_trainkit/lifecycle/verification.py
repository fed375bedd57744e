"""`trainkit backup verify FILE`: prove a backup restores, without touching any real store.

Why a trial restore and not only checksums: checksums prove that the members are the ones the manifest lists,
not that their lines are valid records, that the counts agree, or that the archive loads into the current
schema. So verification runs the real restore (which checks member names, sizes, sha256 and, when
`TRAINKIT_BACKUP_KEY` is set, the manifest's HMAC first) into a scratch SQLite store in a private temporary
folder, removed afterwards, and reports the restored counts and the content digest (`digest.content_digest`),
which an operator can compare with the live store's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from ..scratch import temporary_folder
from .digest import content_digest
from .restore import BackupError, restore
from .rotation import read_manifest
from .signing import SIGNATURE, backup_key


class VerifyError(BackupError):
    """A backup that fails verification (damaged, altered, unsigned while a key is set, or not restorable)."""


def verify_backup(path: str | Path, settings: Any, pm: Any, *, max_bytes: int | None = None) -> dict[str, Any]:
    """Check the backup at `path` and restore it into a scratch store; returns `{file, kind, created_at, source,
    signature, counts, digest}`. `signature` is "verified" (TRAINKIT_BACKUP_KEY set and matching), "not checked"
    (signed, no key set) or "unsigned" (no key set, none in the file). Raises VerifyError naming what failed."""
    from ..kit import open as open_kit

    path = Path(path)
    if not path.is_file():
        raise VerifyError(f"backup verify {path}: no such file")
    manifest = read_manifest(path)
    if manifest is None:
        raise VerifyError(f"backup verify {path}: not a trainkit backup (no manifest.json at its start, or the "
                          "file is damaged)")
    key = backup_key()
    with temporary_folder("trainkit-verify") as folder:
        scratch = attrs.evolve(settings, store_url=f"sqlite:///{folder / 'scratch.db'}", project_dir=folder)

        def opener(url: str) -> Any:
            return open_kit(url, settings=attrs.evolve(scratch, store_url=url), pm=pm)

        with opener(scratch.store_url) as kit:
            try:
                result = restore(path, kit, open_store=opener, max_bytes=max_bytes)
            except BackupError as exc:
                raise VerifyError(f"backup verify {path} failed: {_why(str(exc), path)}") from None
            digest = content_digest(kit)
    if key is not None:
        signature = "verified"
    else:
        signature = "not checked" if SIGNATURE in manifest else "unsigned"
    return {"file": str(path), "kind": result["kind"], "created_at": result["created_at"],
            "source": manifest.get("source"), "signature": signature, "counts": result["counts"],
            "digest": digest["sha256"]}


def _why(message: str, path: Path) -> str:
    """The reason inside restore's "cannot restore PATH: WHY; nothing was written"."""
    prefix = f"cannot restore {path}: "
    message = message[len(prefix):] if message.startswith(prefix) else message
    return message.removesuffix("; nothing was written")
