"""The `neardup` index kept in the store: a new process loads the saved signatures instead of sketching every
stored example, with the same detection results as an index rebuilt from the texts; signatures of changed
examples, of other parameters or versions, and examples stored by processes that saved none are computed again.

Only `neardup` (and the core's basic_checks) judge here: the other quality plugins are disabled.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap

import pytest
from helpers import QUALITY_PLUGINS

import dspy_trainkit as tk
from dspy_trainkit import load_settings

OTHERS = [p for p in QUALITY_PLUGINS if p != "neardup"]
VOCABULARY = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ro", "si", "tu") for b in range(60)]


def texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.sample(VOCABULARY, 30)) for _ in range(n)]


def near(text: str, seed: int, replaced: int = 2) -> str:
    """`text` with `replaced` words swapped for words it does not have: a near-copy (Jaccard ~0.88 for 2)."""
    rng = random.Random(seed)
    words = text.split()
    for position in rng.sample(range(len(words)), replaced):
        words[position] = rng.choice([w for w in VOCABULARY if w not in words])
    return " ".join(words)


def record(text: str) -> dict:
    return {"task": "problems", "inputs": {"problem": text}, "outputs": {"answer": "42"}}


def open_kit(folder, url: str, *, disable=()) -> tk.Kit:
    (folder / "trainkit.toml").write_text("")
    return tk.open(url, settings=load_settings(env={}, cwd=folder), disable=[*OTHERS, *disable])


def index_of(kit: tk.Kit):
    from dspy_trainkit_neardup.index import state_for

    return state_for(kit).index(kit, "problems")


# A new process: opens the store, reports how its index was made and what validate and score say of a probe batch.
PROBE_SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import dspy_trainkit as tk
    from dspy_trainkit import Example, load_settings
    from dspy_trainkit.assessment import score, validate
    from dspy_trainkit_neardup.index import state_for

    folder, url, probe = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    others = json.loads(sys.argv[4])
    with tk.open(url, settings=load_settings(env={}, cwd=folder), disable=others) as kit:
        examples = [Example(**r) for r in probe]
        findings = validate(kit, examples)
        scores = score(kit, examples, findings)
        index = state_for(kit).indexes["problems"]
        print(json.dumps({
            "loaded": index.build_seconds["loaded"], "computed": index.build_seconds["computed"],
            "findings": [[f.message for f in findings.get(ex.id, [])] for ex in examples],
            "novelty": [s["novelty"][0] if "novelty" in s else None for s in scores]}))
""")


def probe_in_new_process(folder, url: str, probe: list[dict]) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE_SCRIPT, str(folder), url, json.dumps(probe),
                             json.dumps(OTHERS)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_new_process_loads_the_saved_index_and_finds_what_a_rebuilt_one_finds(store_url, tmp_path):
    stored = texts(300, seed=1)
    with open_kit(tmp_path, store_url) as kit:
        report = kit.add_many([record(t) for t in stored])
        assert report.accepted == 300
        assert len(index_of(kit)) == 300
    # near-copies of stored texts with 1, 2, 3 of 30 words replaced (Jaccard 0.94, 0.88, 0.82: the last not flagged
    # at 0.85 but scored), unrelated texts, and a near-copy of the first one in the same batch
    probe_texts = [near(stored[i], seed=i, replaced=1 + i // 10 % 3) for i in range(0, 300, 10)] + texts(20, seed=2)
    probe_texts.append(near(probe_texts[0], seed=99, replaced=1))
    probe = [{**record(t), "id": f"{n + 1:032x}"} for n, t in enumerate(probe_texts)]  # the same ids in each run

    loaded = probe_in_new_process(tmp_path, store_url, probe)
    assert (loaded["loaded"], loaded["computed"]) == (300, 0)  # nothing re-tokenised
    with open_kit(tmp_path, store_url) as kit:
        assert kit.store.drop_example_data("neardup/") == 300  # forget the saved signatures
    rebuilt = probe_in_new_process(tmp_path, store_url, probe)
    assert (rebuilt["loaded"], rebuilt["computed"]) == (0, 300)
    assert loaded["findings"] == rebuilt["findings"] and loaded["novelty"] == rebuilt["novelty"]
    flagged = sum(1 for found in loaded["findings"] if found)
    assert flagged == 21 and not any(loaded["findings"][30:50])  # near-copies flagged, unrelated ones not
    kept_copies = [v for v, found in zip(loaded["novelty"][:30], loaded["findings"], strict=False) if not found]
    # scored close to their originals, except a pair at 0.82 that the LSH missed (it finds ~93% of those)
    assert len(kept_copies) == 10 and sum(v < 0.3 for v in kept_copies) >= 8, kept_copies
    assert loaded["novelty"][30:50] == [1.0] * 20
    assert "position 0 in this batch" in loaded["findings"][-1][0]
    again = probe_in_new_process(tmp_path, store_url, probe)  # the rebuild saved them again
    assert (again["loaded"], again["computed"]) == (300, 0) and again["findings"] == loaded["findings"]


def test_examples_stored_or_edited_without_the_plugin_are_sketched_on_load(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    first, second, third = texts(3, seed=3)
    with open_kit(tmp_path, url) as kit:
        kit.add_many([record(first), record(second)])
        index_of(kit)  # built and saved
    with open_kit(tmp_path, url, disable=["neardup"]) as other:  # another process, plugin off: saves nothing
        other.add(record(third))
        edited = next(ex for ex in other.examples() if ex.inputs["problem"] == second)
        other.edit(edited.id, inputs={"problem": texts(1, seed=4)[0]})
    with open_kit(tmp_path, url) as kit:
        index = index_of(kit)
        assert (index.build_seconds["loaded"], index.build_seconds["computed"]) == (1, 2)
        assert kit.add(record(near(third, seed=5))).status == "rejected"  # found although stored without it
        assert kit.add(record(near(second, seed=6))).status == "accepted"  # its old text is gone
        assert kit.add(record(near(texts(1, seed=4)[0], seed=7))).status == "rejected"  # its new one is there


def test_signatures_of_other_parameters_or_versions_are_not_used(tmp_path, monkeypatch):
    from dspy_trainkit_neardup import persist

    url = f"sqlite:///{tmp_path / 'store.db'}"
    stored = texts(40, seed=8)
    with open_kit(tmp_path, url) as kit:
        kit.add_many([record(t) for t in stored])
        index_of(kit)
    (tmp_path / "trainkit.toml").write_text("[plugin.neardup]\nthreshold = 0.7\n")  # another LSH shape
    with tk.open(url, settings=load_settings(env={}, cwd=tmp_path), disable=OTHERS) as kit:
        index = index_of(kit)
        assert (index.num_perm, index.bands) != (162, 18)
        assert (index.build_seconds["loaded"], index.build_seconds["computed"]) == (0, 40)
    monkeypatch.setattr(persist, "PROBE", persist.PROBE + " a tokeniser that cuts words differently")
    with open_kit(tmp_path, url) as kit:
        index = index_of(kit)
        assert (index.build_seconds["loaded"], index.build_seconds["computed"]) == (0, 40)
        kinds = {row[0] for row in kit.store.db.execute_sql("SELECT DISTINCT kind FROM example_data")}
        assert kinds == {persist.kind(index.num_perm, index.bands)}  # the old version's rows were dropped
        assert kit.add(record(near(stored[3], seed=9))).status == "rejected"


def test_a_batch_stored_by_another_process_after_loading_is_found_when_announced(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    first, second = texts(2, seed=10)
    with open_kit(tmp_path, url) as kit, open_kit(tmp_path, url) as other:
        kit.add(record(first))
        other.add(record(second))  # saved its signature too
        rows = kit.store.db.execute_sql("SELECT COUNT(*) FROM example_data").fetchone()[0]
        assert rows == 2
    with open_kit(tmp_path, url) as kit:
        assert (index_of(kit).build_seconds["loaded"], index_of(kit).build_seconds["computed"]) == (2, 0)
        assert kit.add(record(near(second, seed=11))).status == "rejected"


@pytest.mark.parametrize("rows", [0, 5])
def test_the_index_memory_is_compact(tmp_path, rows):
    """Per indexed example: 18 band entries of 8 bytes, the 162-byte signature and the 8-byte hash prefix."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_kit(tmp_path, url) as kit:
        kit.add_many([record(t) for t in texts(rows, seed=12)])
        index = index_of(kit)
        assert len(index) == rows
        assert index.lsh.nbytes == rows * 18 * 8 and len(index.signatures) == rows * 162


# -- candidates estimated in bulk, confirmed from the saved rows ----------------------------------------------


def test_bulk_estimates_equal_the_pairwise_ones_in_any_chunking(monkeypatch):
    """`TaskIndex.candidates` (one numpy estimate per batch, QUERY_CHUNK sketches and PAIR_CHUNK pairs at a time)
    gives every LSH candidate of every sketch with exactly the value `similarity` gives the pair."""
    import numpy as np
    from dspy_trainkit_neardup import index as nd

    from dspy_trainkit import Example

    rng = random.Random(20)  # templated texts: 22 words shared, 8 of their own (pairs at ~0.58: many candidates)
    stored = [" ".join(VOCABULARY[:22] + rng.sample(VOCABULARY[22:], 8)) for _ in range(400)]
    probe = [near(stored[i], seed=i, replaced=1 + i % 4) for i in range(0, 400, 7)] + texts(30, seed=21)
    num_perm, bands = nd.lsh_shape(0.85)
    index = nd.TaskIndex("problems", num_perm, bands)
    index.add(nd.sketch([Example(**record(t)) for t in stored], num_perm, bands))
    index.remove(index.ids[5])  # a removed example is left out
    sketches = nd.sketch([Example(**record(t)) for t in probe], num_perm, bands)
    expected = set()
    for number, (sk, keys) in enumerate(zip(sketches, index.lsh.query(np.stack([s.bands for s in sketches])),
                                            strict=True)):
        for key in keys.tolist():
            if index.ids[key] is not None:
                value = nd.similarity(sk.signature, bytes(index.signatures[key * num_perm:(key + 1) * num_perm]),
                                      num_perm)
                expected.add((number, key, value))
    assert len(expected) > 10 * len(probe)  # enough pairs to tell
    for query_chunk, pair_chunk in ((nd.QUERY_CHUNK, nd.PAIR_CHUNK), (1, 3), (5, 1000)):
        monkeypatch.setattr(nd, "QUERY_CHUNK", query_chunk)
        monkeypatch.setattr(nd, "PAIR_CHUNK", pair_chunk)
        numbers, keys, values = index.candidates(sketches)
        assert set(zip(numbers.tolist(), keys.tolist(), values.tolist(), strict=True)) == expected
        at_least = [0.6] * len(sketches)
        numbers, keys, values = index.candidates(sketches, at_least)
        assert set(zip(numbers.tolist(), keys.tolist(), values.tolist(), strict=True)) == {
            e for e in expected if e[2] >= 0.6}


def test_stored_candidates_are_confirmed_from_the_saved_rows_without_reading_examples(tmp_path):
    """The exact similarity of a stored candidate comes from the word hashes saved with its signature; the example
    is read only when it has no current row (here: the rows dropped), with the same findings and novelty."""
    from dspy_trainkit_neardup import check

    from dspy_trainkit import Example

    url = f"sqlite:///{tmp_path / 'store.db'}"
    stored = texts(60, seed=22)
    with open_kit(tmp_path, url) as kit:
        kit.add_many([record(t) for t in stored])
    probe = [Example(**record(near(stored[i], seed=i, replaced=1 + i % 3))) for i in range(0, 60, 6)]
    with open_kit(tmp_path, url) as kit:
        index_of(kit)  # loaded from the saved rows
        reads = []
        original = kit.store.iter_examples
        kit.store.iter_examples = lambda query: reads.append(query) or original(query)
        saved = check.validate(kit, probe)
        saved_novelty = check.novelty(kit, probe)
        assert reads == []
        assert kit.store.drop_example_data("neardup/") == 60
        read_back = check.validate(kit, probe)
        assert len(reads) == 1 and len(reads[0].ids) >= len(probe)  # one query for the batch's stored candidates
        assert read_back.keys() == saved.keys() and len(saved) >= 6
        assert [f.message for p in saved for f in saved[p]] == [f.message for p in read_back for f in read_back[p]]
        assert check.novelty(kit, probe) == saved_novelty


def test_rows_of_the_first_format_are_sketched_again_and_dropped(tmp_path):
    """Rows saved before word hashes were (kind `neardup/r...`, 242 bytes) are not used: the examples are sketched
    again, saved in the current format, and the old rows dropped."""
    from dspy_trainkit_neardup import persist
    from dspy_trainkit_neardup.index import SEED
    from rensa import RMinHash

    url = f"sqlite:///{tmp_path / 'store.db'}"
    stored = texts(20, seed=23)
    with open_kit(tmp_path, url) as kit:
        kit.add_many([record(t) for t in stored])
        index = index_of(kit)
        size = persist.fixed_size(index.num_perm, index.bands)
        fingerprint = persist.version().rsplit(".w", 1)[1]
        old_kind = f"neardup/r{RMinHash.ALGORITHM_VERSION}.s{SEED}.w{fingerprint}{index.num_perm}x{index.bands}"
        rows = kit.store.db.execute_sql("SELECT example_id, content_hash, data FROM example_data").fetchall()
        assert len(rows) == 20 and all(len(bytes(data)) > size for _, _, data in rows)
        kit.store.drop_example_data("neardup/")
        kit.store.save_example_data(old_kind, [(i, h, bytes(data)[:size]) for i, h, data in rows])
    with open_kit(tmp_path, url) as kit:
        index = index_of(kit)
        assert (index.build_seconds["loaded"], index.build_seconds["computed"]) == (0, 20)
        kinds = {row[0] for row in kit.store.db.execute_sql("SELECT DISTINCT kind FROM example_data")}
        assert kinds == {persist.kind(index.num_perm, index.bands)}
        assert kit.add(record(near(stored[4], seed=24))).status == "rejected"


def test_words_kept_in_memory_settle_pairs_below_the_cut_without_reading_the_store(tmp_path, monkeypatch):
    """Confirming a stored candidate below what counts reads nothing when its word hashes are in memory (indexed
    in this process or loaded with its row); the store is read for pairs at or above the cut, as without them,
    and findings and novelty are the same with no words kept (WORDS_BUDGET 0)."""
    from dspy_trainkit_neardup import check
    from dspy_trainkit_neardup import index as nd

    from dspy_trainkit import Example

    rng = random.Random(32)  # templated: 22 words shared, 8 of their own (pairs at ~0.6, just below the floor)
    stored = [" ".join(VOCABULARY[:22] + rng.sample(VOCABULARY[22:82], 8)) for _ in range(300)]
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_kit(tmp_path, url) as kit:
        kit.add_many([record(t) for t in stored])
    probe = [Example(**record(near(stored[i], seed=i, replaced=1 + i % 3))) for i in range(0, 300, 10)]
    results, read_ids, default = {}, {}, nd.WORDS_BUDGET
    for budget in (default, 0):
        monkeypatch.setattr(nd, "WORDS_BUDGET", budget)
        with open_kit(tmp_path, url) as kit:
            index_of(kit)  # loaded from the saved rows, words kept while the budget allows
            reads: list[str] = []
            original = kit.store.iter_example_data
            kit.store.iter_example_data = (lambda kind, query, reads=reads, original=original:
                                           reads.extend(query.ids) or original(kind, query))
            findings = check.validate(kit, probe)
            results[budget] = ([(p, [f.message for f in fs]) for p, fs in sorted(findings.items())],
                               check.novelty(kit, probe))
            read_ids[budget] = set(reads)
    assert results[default] == results[0]
    assert len(results[0][0]) >= 10  # the near-copies are found either way
    assert len(read_ids[0]) > 3 * len(read_ids[default])  # without kept words every candidate near the cut is read
    assert read_ids[default] <= read_ids[0]


def test_candidate_threads_give_the_serial_answer_and_leave_signals_to_the_main_thread(monkeypatch):
    """A batch's candidates are found by a pool of threads, QUERY_CHUNK sketches each: the same arrays, in the
    same order, as one thread; and the pool's threads block SIGTERM and SIGINT (else the kernel may hand a `kill`
    to a thread whose Python handler never runs, see thread_signals.py)."""
    import signal

    import numpy as np
    from dspy_trainkit_neardup import index as nd

    from dspy_trainkit import Example

    rng = random.Random(33)
    stored = [" ".join(VOCABULARY[:22] + rng.sample(VOCABULARY[22:82], 8)) for _ in range(400)]
    num_perm, bands = nd.lsh_shape(0.85)
    sketches = nd.sketch([Example(**record(t)) for t in stored], num_perm, bands)
    index = nd.TaskIndex("problems", num_perm, bands)
    index.add(sketches[:300])
    monkeypatch.setattr(nd, "QUERY_CHUNK", 7)
    monkeypatch.setattr(nd, "available_cores", lambda: 2)
    threaded = index.candidates(sketches[300:], [0.5] * 100, other_content=True)
    monkeypatch.setattr(nd, "available_cores", lambda: 1)
    serial = index.candidates(sketches[300:], [0.5] * 100, other_content=True)
    assert len(serial[0]) > 100
    for mine, theirs in zip(threaded, serial, strict=True):
        assert np.array_equal(mine, theirs)
    status = nd._thread_pool().submit(lambda: open("/proc/thread-self/status").read()).result()
    blocked = int(next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16)
    for number in (signal.SIGTERM, signal.SIGINT):
        assert blocked & (1 << (number - 1))


def test_word_sets_are_made_right_while_another_thread_empties_the_word_cache(monkeypatch):
    """Threads share the cache of word hashes, and a thread that fills it empties it: a batch's word sets must not
    read words back from the shared cache after filling it (a stranger's two importing threads got KeyError)."""
    import sys
    import threading

    from dspy_trainkit_neardup import index as nd

    monkeypatch.setattr(nd, "WORD_CACHE", 64)  # every batch empties it
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    failures: list[BaseException] = []

    def hash_batches(thread: int) -> None:
        try:
            for batch in range(60):
                lists = [[f"w{thread}_{batch}_{i}_{j}" for j in range(20)] for i in range(50)]
                made = nd.word_sets_of(lists)
                assert made == [frozenset(nd._word_hash(w) for w in found) for found in lists]
        except BaseException as exc:  # noqa: BLE001 - reported below, with its thread's answer
            failures.append(exc)

    try:
        threads = [threading.Thread(target=hash_batches, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []


def test_kept_word_similarities_in_bulk_equal_the_pairwise_ones(monkeypatch):
    """`TaskIndex.jaccard_kept` gives, for every pair, exactly what `jaccard` gives on the two word sets, and NaN
    for an example whose words are not kept (the budget spent part way)."""
    import numpy as np
    from dspy_trainkit_neardup import index as nd

    from dspy_trainkit import Example

    rng = random.Random(34)
    stored = [" ".join(VOCABULARY[:10] + rng.sample(VOCABULARY[10:200], rng.randint(1, 40))) for _ in range(300)]
    probe = [" ".join(rng.sample(VOCABULARY, rng.randint(1, 50))) for _ in range(40)]
    num_perm, bands = nd.lsh_shape(0.85)
    kept_sketches = nd.sketch([Example(**record(t)) for t in stored], num_perm, bands)
    monkeypatch.setattr(nd, "WORDS_BUDGET", sum(8 * len(sk.word_hashes) for sk in kept_sketches[:200]))
    index = nd.TaskIndex("problems", num_perm, bands)
    index.add(kept_sketches)
    sketches = nd.sketch([Example(**record(t)) for t in probe], num_perm, bands)
    numbers = np.repeat(np.arange(len(probe)), 300)
    keys = np.tile(np.arange(300), len(probe))
    values = index.jaccard_kept(sketches, numbers, keys)
    expected = [nd.jaccard(sketches[n].word_hashes, kept_sketches[k].word_hashes) if k < 200 else None
                for n, k in zip(numbers.tolist(), keys.tolist(), strict=True)]
    assert [None if np.isnan(v) else v for v in values.tolist()] == expected


def test_the_word_budget_is_shared_by_a_kits_task_indexes(tmp_path, monkeypatch):
    """WORDS_BUDGET bounds the word hashes kept for one open kit, whatever its number of tasks: a second task's
    index keeps only what the first left."""
    from dspy_trainkit_neardup import index as nd

    from dspy_trainkit import Example

    texts_ = texts(50, seed=35)
    num_perm, bands = nd.lsh_shape(0.85)
    sketches = nd.sketch([Example(**record(t)) for t in texts_], num_perm, bands)
    size = sum(8 * len(sk.word_hashes) for sk in sketches[:30])
    monkeypatch.setattr(nd, "WORDS_BUDGET", size)
    shared = nd.WordBudget()
    first, second = (nd.TaskIndex(task, num_perm, bands, shared) for task in ("a", "b"))
    first.add(sketches[:20])
    second.add(sketches[20:])
    assert sum(first.word_kept) == 20 and sum(second.word_kept) == 10 and shared.left == 0
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_kit(tmp_path, url) as kit:
        state = nd.state_for(kit)
        assert state.index(kit, "problems").budget is state.index(kit, "other").budget is state.words


FORK_AFTER_IMPORT = """
import multiprocessing, sys
import dspy_trainkit as tk

def records(prefix):
    return [{"task": "qa", "inputs": {"question": f"{prefix} question {i} about item {i * 7} and {i * 13}?"},
             "outputs": {"answer": str(i)}} for i in range(6000)]

def child(url):
    with tk.open(url) as kit:
        kit.add_many(records("child"))
    print("child done", flush=True)

if __name__ == "__main__":
    folder = sys.argv[1]
    with tk.open(f"sqlite:///{folder}/parent.db") as kit:
        kit.add_many(records("parent"))
    process = multiprocessing.get_context("fork").Process(target=child, args=(f"sqlite:///{folder}/child.db",))
    process.start()
    process.join(90)
    print("alive" if process.is_alive() else f"exit {process.exitcode}", flush=True)
    if process.is_alive():
        process.kill()
"""


def test_a_process_forked_after_an_import_can_import(tmp_path):
    """A child forked after its parent imported (multiprocessing's default start on Linux, pre-fork servers) runs
    its own import to the end: rensa's thread pool, dead in a forked child, is not used (it hung there)."""
    import subprocess
    import sys

    (tmp_path / "trainkit.toml").write_text("")
    result = subprocess.run([sys.executable, "-c", FORK_AFTER_IMPORT, str(tmp_path)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.stdout.split() == ["child", "done", "exit", "0"], result.stdout + result.stderr


def test_stored_candidates_reduced_in_small_chunks_give_the_same_findings_and_novelty(tmp_path, monkeypatch):
    """The stored candidates of a batch are reduced a few sketches and pairs at a time (memory stays bounded when
    every stored example is a candidate): any chunking gives the same findings and novelty, with words kept in
    memory and read from the store."""
    from dspy_trainkit_neardup import check
    from dspy_trainkit_neardup import index as nd

    from dspy_trainkit import Example

    rng = random.Random(36)  # templated: every pair a candidate near the floor
    stored = [" ".join(VOCABULARY[:24] + rng.sample(VOCABULARY[24:64], 6)) for _ in range(200)]
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with open_kit(tmp_path, url) as kit:
        kit.add_many([record(t) for t in stored])
    probe = [Example(**record(near(stored[i], seed=i, replaced=1 + i % 3))) for i in range(0, 200, 5)]
    results = []
    for chunks, budget in (((check.STORED_CHUNK, check.PAIR_CHUNK, nd.WORD_PAIR_CHUNK), nd.WORDS_BUDGET),
                           ((3, 5, 7), nd.WORDS_BUDGET), ((3, 5, 7), 0)):
        monkeypatch.setattr(check, "STORED_CHUNK", chunks[0])
        monkeypatch.setattr(check, "PAIR_CHUNK", chunks[1])
        monkeypatch.setattr(nd, "WORD_PAIR_CHUNK", chunks[2])
        monkeypatch.setattr(nd, "WORDS_BUDGET", budget)
        with open_kit(tmp_path, url) as kit:
            findings = check.validate(kit, probe)
            results.append(([(p, [f.message for f in fs]) for p, fs in sorted(findings.items())],
                            check.novelty(kit, probe)))
    assert results[0] == results[1] == results[2]
    assert len(results[0][0]) >= 20 and any(score["novelty"] < 0.3 for score in results[0][1].values())
