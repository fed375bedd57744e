"""Shared tokenisation (`pluginkit.tokens`), and the text plugins rewritten on it giving the same results as
before on a corpus (the expected values in data/golden/text_plugins.json were written by the code before the
rewrite: tests/text_corpus.py builds the corpus)."""

from __future__ import annotations

import json
from pathlib import Path

import dspy_trainkit_coherence as coherence
import dspy_trainkit_pii as pii
import text_corpus

from dspy_trainkit import tokens as tokens_module
from dspy_trainkit.models import Example
from dspy_trainkit.pluginkit import Tokens, tokens

GOLDEN = json.loads((Path(__file__).parent / "data" / "golden" / "text_plugins.json").read_text(encoding="utf-8"))


def test_tokens_views():
    t = tokens("  Café au LAIT,\n\tplease: 2 + 40 = 42  ")
    assert isinstance(t, Tokens)
    assert t.lower == "  café au lait,\n\tplease: 2 + 40 = 42  "
    assert t.words == ("café", "au", "lait", "please", "2", "40", "42")
    assert t.squashed == "café au lait, please: 2 + 40 = 42"
    assert t.digits == 5
    assert tokens("٣٤ and 5").digits == 3  # Arabic-Indic digits are digits to `\d` too


def test_ascii_words_are_the_words_of_the_regex():
    """ASCII text is cut by byte translation and split (faster); it must give WORD's words exactly."""
    import random

    every = "".join(map(chr, range(128)))
    rng = random.Random(5)
    texts = [every, every[::-1], "a_b-c d\x1ce\x85f", *("".join(rng.choices(every, k=rng.randint(0, 40)))
                                                        for _ in range(3000))]
    for text in texts:
        assert Tokens(text).words == tuple(tokens_module.WORD.findall(text.lower())), repr(text)


def test_tokens_are_shared_within_a_batch_and_forgotten_after():
    first = tokens("the same text")
    assert tokens("the same text") is first
    tokens_module.new_batch()
    assert tokens("the same text") is not first


def test_tokens_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(tokens_module, "MAX_CACHED", 3)
    tokens_module.new_batch()
    for i in range(10):
        tokens(f"text {i}")
    assert len(tokens_module._cache) <= 3


def test_intake_starts_each_batch_with_an_empty_cache(tmp_path, monkeypatch):
    import dspy_trainkit as tk
    from dspy_trainkit.settings import load_settings

    calls = []
    monkeypatch.setattr(tokens_module, "new_batch", lambda: calls.append(len(tokens_module._cache)))
    (tmp_path / "trainkit.toml").write_text(f'[store]\nurl = "sqlite:///{tmp_path}/s.db"\n[intake]\nbatch_size = 2\n')
    with tk.open(settings=load_settings(tmp_path / "trainkit.toml", env={}), create=True) as kit:
        kit.add_many([{"task": "qa", "inputs": {"q": f"question {i}"}, "outputs": {"a": f"answer {i}"}}
                 for i in range(5)])
    assert len(calls) == 6  # three batches, each started and ended with an empty cache (ended: see gc_pause)


def test_coherence_and_pii_results_are_unchanged_on_the_corpus():
    """Every record's coherence parts (with and without a length norm) and pii findings, and every text's
    repeated share and structure penalty, equal what the code before the shared tokenisation gave."""
    tokens_module.new_batch()
    rules = pii.Rules({})
    found: dict[str, list] = {"coherence": [], "pii": []}
    for record in text_corpus.records():
        ex = Example(task="qa", inputs=record["inputs"], outputs=record["outputs"])
        found["coherence"].append([record["id"], coherence.parts(ex, None), coherence.parts(ex, (3.0, 4.0, 1.0))])
        found["pii"].append([record["id"], [f.to_dict() for f in pii.check_example(ex, rules)]])
    for text in text_corpus.texts():
        found["coherence"].append([text, coherence.repeated_share(text) if text.strip() else None,
                                   coherence.structure_penalty(text.strip()) if text.strip() else None])
    found = json.loads(json.dumps(found))
    assert sum(1 for _, findings in found["pii"] if findings) > 300  # the corpus does exercise pii
    for kind in ("coherence", "pii"):
        assert len(found[kind]) == len(GOLDEN[kind])
        for mine, expected in zip(found[kind], GOLDEN[kind], strict=True):
            assert mine == expected
