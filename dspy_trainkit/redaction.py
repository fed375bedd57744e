"""One redaction of secrets for every message, log line, stored record and backup."""

from __future__ import annotations

import re


def redact_url(url: str) -> str:
    """`url` with its password shown as `***` (in the user part and in a `password=` option), for messages,
    manifests and snapshot configs; everything else as given."""
    scheme, sep, rest = url.partition("://")
    if sep:
        authority = rest.split("/", 1)[0]
        userinfo, at, host = authority.rpartition("@")
        if at and ":" in userinfo:
            rest = f"{userinfo.split(':', 1)[0]}:***@{host}{rest[len(authority):]}"
        url = f"{scheme}://{rest}"
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", url, flags=re.IGNORECASE)
