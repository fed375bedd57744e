"""Signing backup manifests with a secret key, so an altered archive whose checksums were recomputed is refused.

The manifest's sha256 checksums prove only that the members are the ones the manifest lists: they catch a
damaged or truncated file, but anyone who can change the archive can recompute them. When a key is configured
(`TRAINKIT_BACKUP_KEY`), `backup` adds an HMAC-SHA256 of the manifest (every field but the signature, as
canonical JSON) and `restore` refuses an archive whose signature is missing or does not match. Without the key
nobody can make a matching signature; the key never goes into the archive.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any

import orjson

KEY_ENV = "TRAINKIT_BACKUP_KEY"
#: the manifest field that holds the signature
SIGNATURE = "hmac_sha256"


def backup_key(env: Mapping[str, str] | None = None) -> bytes | None:
    """The signing key from `TRAINKIT_BACKUP_KEY`, or None when it is unset or empty."""
    value = (os.environ if env is None else env).get(KEY_ENV, "")
    try:
        return value.encode() if value else None
    except UnicodeEncodeError:  # a byte that is not UTF-8 (Python holds it as a lone surrogate)
        from ..errors import ConfigError

        raise ConfigError(f"{KEY_ENV} is not UTF-8 text; set a key in UTF-8 (its value is not shown)") from None


def sign(manifest: Mapping[str, Any], key: bytes) -> str:
    """The hex HMAC-SHA256 of `manifest` without its signature field."""
    body = {k: v for k, v in manifest.items() if k != SIGNATURE}
    return hmac.new(key, orjson.dumps(body, option=orjson.OPT_SORT_KEYS), hashlib.sha256).hexdigest()


def signature_problem(manifest: Mapping[str, Any], key: bytes | None) -> str | None:
    """Why `manifest` fails the signature check under `key`, or None when it passes (or no key is set)."""
    if key is None:
        return None
    given = manifest.get(SIGNATURE)
    if not isinstance(given, str):
        return (f"{KEY_ENV} is set but the manifest is not signed (made without the key, or the signature was "
                "removed); unset the variable only if you trust where the file came from")
    if not hmac.compare_digest(given, sign(manifest, key)):
        return f"the manifest's signature does not match {KEY_ENV} (altered, or signed with another key)"
    return None
