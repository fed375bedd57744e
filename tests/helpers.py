"""Small builders shared by tests."""

from __future__ import annotations


def qa(question: str, answer: str = "42", **labels) -> dict:
    """A small example record for task 'qa'."""
    return {"task": "qa", "inputs": {"question": question}, "outputs": {"answer": answer}, **labels}
