"""A SQLite store imports peewee without psycopg2 (start-up time), and a PostgreSQL store opened later in the same
process still works: psycopg2 is handed to peewee then (plugins/dspy_trainkit_sqlstore/driver.py).

Each check runs in a fresh interpreter: this test process has imported peewee (with psycopg2) long before.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# What peewee holds of psycopg2 after the handover (or after its own import): every module-level name whose value
# comes from psycopg2, the transaction statuses of its psycopg2 adapter, and how psycopg2 now adapts a uuid.UUID.
PEEWEE_STATE = """
import json, sys, uuid
{prelude}
import peewee

def origin(value):
    if type(value).__name__ == "module":
        return "module " + value.__name__
    return f"{{getattr(value, '__module__', None)}}.{{getattr(value, '__qualname__', type(value).__qualname__)}}"

names = {{name: origin(value) for name, value in vars(peewee).items()
         if origin(value).removeprefix("module ").startswith("psycopg2")}}
adapter = {{name: getattr(peewee.Psycopg2Adapter, name, None) for name in ("txn_idle", "txn_inerror", "txn_unknown")}}
import psycopg2.extensions
print(json.dumps({{"names": names, "adapter": adapter,
                  "uuid": type(psycopg2.extensions.adapt(uuid.uuid4())).__qualname__,
                  "deferred": deferred}}))
"""

NORMAL = "deferred = None"
HANDED_OVER = """
from dspy_trainkit_sqlstore.driver import hand_over_psycopg2, import_peewee_without_psycopg2
deferred = import_peewee_without_psycopg2().psycopg2 is None and "psycopg2" not in sys.modules
hand_over_psycopg2()
"""


def run_python(code: str, cwd: Path) -> str:
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_handover_gives_peewee_what_its_own_import_sets(tmp_path: Path) -> None:
    """A peewee release that takes more from psycopg2 at import changes the normal side and fails this test."""
    normal = json.loads(run_python(PEEWEE_STATE.format(prelude=NORMAL), tmp_path))
    handed = json.loads(run_python(PEEWEE_STATE.format(prelude=HANDED_OVER), tmp_path))
    assert handed.pop("deferred") is True, "peewee was imported without psycopg2 before the handover"
    normal.pop("deferred")
    assert {"psycopg2", "Json_pg2", "pg_extensions"} <= set(normal["names"])
    assert None not in normal["adapter"].values() and normal["uuid"] == "UUID_adapter"
    assert handed == normal


SQLITE_THEN_POSTGRES = """
import json, sys
import dspy_trainkit as tk

def fill(kit):
    kit.add(task="qa", inputs={"question": "2+2?"}, outputs={"answer": "4"})
    report = kit.add_many({"task": "qa", "inputs": {"question": f"what is {n} times {n}?"},
                           "outputs": {"answer": str(n * n)}} for n in range(2, 40))
    return report.stored, kit.stats()["total"]

with tk.open("sqlite:///local.db") as kit:
    sqlite = fill(kit)
psycopg2_after_sqlite = "psycopg2" in sys.modules
with tk.open(sys.argv[1]) as kit:
    postgres = fill(kit)
    listed = len(list(kit.examples(task="qa")))
    first = kit.get(next(kit.examples(task="qa")).id).id
with tk.open("sqlite:///local.db") as kit:
    again = kit.stats()["total"]
print(json.dumps({"sqlite": sqlite, "psycopg2_after_sqlite": psycopg2_after_sqlite, "postgres": postgres,
                  "listed": listed, "found": bool(first), "sqlite_again": again}))
"""


def test_a_sqlite_store_does_not_import_psycopg2(tmp_path: Path) -> None:
    code = ("import sys, dspy_trainkit as tk\n"
            "with tk.open('sqlite:///local.db') as kit:\n"
            "    kit.add(task='qa', inputs={'question': '2+2?'}, outputs={'answer': '4'})\n"
            "    total = kit.stats()['total']\n"
            "import peewee\n"
            "print(total, 'psycopg2' in sys.modules, peewee.psycopg2 is None)")
    assert run_python(code, tmp_path) == "1 False True"


def test_a_postgres_store_after_a_sqlite_store_in_one_process(tmp_path: Path, postgres_schema_url: str) -> None:
    result = subprocess.run([sys.executable, "-c", SQLITE_THEN_POSTGRES, postgres_schema_url], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["psycopg2_after_sqlite"] is False, "the SQLite store opened first, without psycopg2"
    assert found["sqlite"] == found["postgres"] == [38, 39]
    assert found["listed"] == 39 and found["found"] and found["sqlite_again"] == 39


@pytest.mark.parametrize("first", ["peewee", "psycopg2"])
def test_an_earlier_import_is_left_as_it_is(tmp_path: Path, first: str) -> None:
    """A program that imported peewee or psycopg2 itself keeps peewee's own PostgreSQL support untouched."""
    code = (f"import sys, {first}\n"
            "from dspy_trainkit_sqlstore.driver import import_peewee_without_psycopg2\n"
            "peewee = import_peewee_without_psycopg2()\n"
            "print(peewee.psycopg2 is not None, 'psycopg2' in sys.modules)")
    assert run_python(code, tmp_path) == "True True"
