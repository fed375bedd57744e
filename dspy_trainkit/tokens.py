"""Shared tokenisation: each text is lowercased and cut into words once per intake batch, however many plugins
look at it.

Several built-in plugins read the same output texts (coherence counts repeated word trigrams and sentences, pii
looks for digits and `@`, near-duplicates compare word sets); each used to lowercase and cut the text itself,
so one example's answer was scanned three or four times per import. `tokens(text)` returns one `Tokens` per
distinct text, kept in a cache that intake empties at the start of every batch (so memory is bounded by one
batch's texts; outside intake the cache is emptied whenever it grows past `MAX_CACHED`). Each view of the text
(`squashed`, `digits`) is computed on first use; `lower` and `words`, which nearly every reader wants, at once.
Third-party plugins get it from `dspy_trainkit.pluginkit` (`tokens`, `Tokens`).
"""

from __future__ import annotations

import re

#: A word for `Tokens.words`: a run of Unicode letters, digits and "_" (Python's `\w`).
WORD = re.compile(r"\w+")
#: Texts cached between two `new_batch()` calls at most (a batch of 1000 examples has a few thousand).
MAX_CACHED = 50_000
#: ASCII text: every byte that is not a `\w` character (ASCII letters, digits, "_") made a space, so that
#: `split()` gives the words WORD finds, in half its time (most texts of an import are ASCII).
_ASCII_NON_WORD_TO_SPACE = bytes(b if chr(b).isascii() and (chr(b).isalnum() or b == ord("_")) else 0x20
                                 for b in range(256))


class Tokens:
    """The views of one text plugins share. `text` is the text as given; the others are computed once:

    - `lower`: `text.lower()`;
    - `words`: the `\\w+` runs of `lower`, in order, repeats kept (a tuple);
    - `squashed`: `lower` with every run of whitespace made one space and no outer space (to compare texts
      that differ only in spacing or case);
    - `digits`: how many decimal digits the text holds (0 means no number can be in it).
    """

    __slots__ = ("text", "lower", "words", "_squashed", "_digits")

    def __init__(self, text: str):
        # lower and words are what nearly every reader wants: made at once (a property costs more than them)
        self.text = text
        self.lower = lower = text.lower()
        self.words: tuple[str, ...] = tuple(
            lower.encode().translate(_ASCII_NON_WORD_TO_SPACE).decode().split() if lower.isascii()
            else WORD.findall(lower))
        self._squashed: str | None = None
        self._digits: int | None = None

    @property
    def squashed(self) -> str:
        if self._squashed is None:
            self._squashed = " ".join(self.lower.split())
        return self._squashed

    @property
    def digits(self) -> int:
        if self._digits is None:
            text = self.text
            self._digits = 0 if text.isalpha() else sum(map(text.count, "0123456789")) + (
                0 if text.isascii() else sum(1 for c in text if c.isdecimal() and not "0" <= c <= "9"))
        return self._digits

    def __repr__(self) -> str:
        return f"Tokens({self.text!r})"


_cache: dict[str, Tokens] = {}


def tokens(text: str) -> Tokens:
    """The shared `Tokens` of `text` (the same object for the same text within a batch)."""
    found = _cache.get(text)
    if found is None:
        if len(_cache) >= MAX_CACHED:
            _cache.clear()
        found = _cache[text] = Tokens(text)
    return found


def new_batch() -> None:
    """Forget the texts of the previous batch (intake calls this before each batch)."""
    _cache.clear()
