"""Shared by the dashboard tests: a small store with hostile text, and a TestClient over the dashboard app."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dspy_trainkit as tk

SCRIPT = "<script>alert('x')</script>"
IMG = '"><img src=x onerror=alert(1)>'


def fill(url: str, n: int = 12) -> list[str]:
    """`n` qa examples over two topics (hostile text in the first), the first 4 made candidates; their ids."""
    with tk.open(url) as kit:
        ids = []
        for i in range(n):
            question = f"What is {i} plus {i}? {SCRIPT}" if i == 0 else f"What is {i} plus {i}?"
            answer = f"{2 * i} {IMG}" if i == 0 else f"It is {2 * i}."
            ids.append(kit.add(task="qa", inputs={"question": question}, outputs={"answer": answer},
                               domain="math", topic="add-even" if i % 2 == 0 else "add-odd",
                               difficulty="easy").id)
        kit.set_status("candidate", ids=ids[:4], actor="test", reason="to review")
    return ids


@contextmanager
def client(url: str, **config) -> Iterator:
    from dspy_trainkit_web.access import KitWorker
    from dspy_trainkit_web.app import AppConfig, build_app
    from starlette.testclient import TestClient

    worker = KitWorker(lambda: tk.open(url))
    options = {"hosts": frozenset({"testserver"}), "user": "tester", **config}
    app = build_app(worker, AppConfig(**options))
    try:
        with TestClient(app, follow_redirects=False) as test_client:
            test_client.get("/healthz")  # the CSRF cookie, as any page view sets it
            yield test_client
    finally:
        worker.close()


def post(test_client, path: str, data: dict, **headers):
    """A POST as the dashboard's own forms send it: same Origin, the CSRF cookie's token in the form."""
    token = test_client.cookies.get("trainkit_csrf")
    return test_client.post(path, data={"csrf": token, **data},
                            headers={"origin": "http://testserver", **headers})
