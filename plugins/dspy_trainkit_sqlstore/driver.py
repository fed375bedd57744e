"""peewee without the PostgreSQL driver on the SQLite path, and the driver handed to peewee when a PostgreSQL
store opens.

peewee tries `import psycopg2` (with `psycopg2.extras`, which brings in `ssl`, `decimal`, ...) when it is itself
imported: about 10 ms, more than half of `python -c pass`, paid by every `trainkit stats` on a SQLite store that
never talks to PostgreSQL (docs/performance.md, "Start-up"). `import_peewee_without_psycopg2` imports peewee with
that one import failing as it fails where psycopg2 is not installed (an entry of None in `sys.modules` makes an
import raise ImportError, as Python's import system documents), then removes the entry, so psycopg2 imports
normally afterwards. peewee supports running without a PostgreSQL driver: it leaves its driver names None.

`hand_over_psycopg2`, called when a PostgreSQL store is opened, gives peewee what its own import would have set:
the module names it keeps (`psycopg2`, `pg_extensions`, `pg_register_uuid`, `Json_pg2`), the UUID adapter it
registers with psycopg2, and the transaction-status constants of its `Psycopg2Adapter`. After that peewee's
PostgreSQL support is as if peewee had found psycopg2 itself, so SQLite and PostgreSQL stores work side by side in
one process whichever opens first (tests/test_store_driver.py compares the two states).

Limit: a program that imports peewee only through a trainkit SQLite store and then uses peewee's
`PostgresqlDatabase` on its own, without ever opening a trainkit PostgreSQL store, must call `hand_over_psycopg2()`
first (or import peewee itself before opening the store, which this module then leaves alone).
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

#: What peewee's import sets from psycopg2 (peewee 4.x: the module-level names of its driver import block).
PEEWEE_PSYCOPG2_NAMES = ("psycopg2", "pg_extensions", "pg_register_uuid", "Json_pg2")
#: Class attributes of `peewee.Psycopg2Adapter` that peewee sets only when it found psycopg2.
ADAPTER_STATUSES = {"txn_idle": "TRANSACTION_STATUS_IDLE", "txn_inerror": "TRANSACTION_STATUS_INERROR",
                    "txn_unknown": "TRANSACTION_STATUS_UNKNOWN"}


def import_peewee_without_psycopg2() -> ModuleType:
    """peewee, imported now without psycopg2 unless peewee or psycopg2 is imported already (then as it is)."""
    if "peewee" not in sys.modules and "psycopg2" not in sys.modules:
        sys.modules["psycopg2"] = None  # type: ignore[assignment]  # `import psycopg2` raises ImportError
        try:
            import peewee
        finally:
            if "psycopg2" in sys.modules and sys.modules["psycopg2"] is None:
                del sys.modules["psycopg2"]
    import peewee

    return peewee


def hand_over_psycopg2() -> Any:
    """Import psycopg2 (ImportError when it is not installed) and complete peewee's PostgreSQL support with it
    when peewee was imported without it; returns the psycopg2 module."""
    import peewee
    import psycopg2

    if peewee.psycopg2 is not None:  # peewee found it at its own import (or it was handed over before)
        return psycopg2
    from psycopg2 import extensions
    from psycopg2.extras import Json, register_uuid

    register_uuid()  # as peewee's import does: uuid.UUID values as PostgreSQL uuids
    for attribute, constant in ADAPTER_STATUSES.items():
        setattr(peewee.Psycopg2Adapter, attribute, getattr(extensions, constant))
    peewee.pg_extensions, peewee.pg_register_uuid, peewee.Json_pg2 = extensions, register_uuid, Json
    peewee.psycopg2 = psycopg2  # last: the name the other steps are keyed on
    return psycopg2
