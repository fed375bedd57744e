"""The index's signatures kept in the store (`ExampleDataStore`), so that a new process loads a task's index
instead of re-tokenising and re-hashing every stored example.

Per example one row of kind `neardup/<version>/<num_perm>x<bands>`: the 64-bit content-hash prefix, the compact
signature (`num_perm` bytes), the band hashes (4 bytes each), 242 bytes with the default shape, then the 64-bit
hashes of its distinct words (`index.word_set`, 8 bytes a word), which confirm a candidate's exact similarity
without reading the example back (`word_sets`). The version names everything a row depends on besides the
shape: the row's format, rensa's MinHash algorithm version, the seed, and a fingerprint of the word tokeniser's
output on a probe text, so rows made by other code are not used (and are dropped the first time the new version
finds none of its own: rows of format 1, without the word hashes, are sketched again once). Each row carries
the content hash it was made from and the store returns a row only while the example still has that content, so
an example edited by any process, with or without this plugin, is sketched again.

Loading reads, in one streamed query, every live example of the task with its row (or none); examples without a
current row (stored by a process that had the plugin off, stored before this version, edited since, or whose
row was not written because that process stopped after committing its batch) are sketched from the store and
their rows written, so the next process loads them too. Rows are written after each committed batch (one more
transaction per batch); a store that cannot keep them (a backend without `ExampleDataStore`, a read-only store)
only costs the rebuild.
"""

from __future__ import annotations

import logging
import time
import zlib
from typing import TYPE_CHECKING

from dspy_trainkit.pluginkit import ExampleQuery, StoreError

from .index import (
    BUILD_CHUNK,
    ID_CHUNK,
    LIVE,
    SEED,
    Sketch,
    TaskIndex,
    WordBudget,
    sketch,
    unpack_words,
    word_set,
)
from .text import words

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dspy_trainkit.pluginkit import Example, Kit

log = logging.getLogger(__name__)
PREFIX = "neardup/"
#: Tokenised on every load: a tokeniser that cuts it differently makes signatures of another version.
PROBE = "Ünïcode «quoted» Paris. 2+2, l'été (x) -3.5 e-mail co-op; DONE!"
LOAD_CHUNK = 50_000
#: The rows' layout: 2 added the word hashes (format 1 rows, `neardup/r...`, had none).
FORMAT = 2


def version() -> str:
    """`neardup/f<format>.r<rensa algorithm>.s<seed>.w<tokeniser fingerprint>/`: the kind prefix of current
    signatures."""
    from rensa import RMinHash

    fingerprint = zlib.crc32("\x00".join(words(PROBE)).encode())
    return f"{PREFIX}f{FORMAT}.r{RMinHash.ALGORITHM_VERSION}.s{SEED}.w{fingerprint:08x}/"


def fixed_size(num_perm: int, bands: int) -> int:
    """Bytes of a row before its word hashes: hash prefix, signature, band hashes."""
    return 8 + num_perm + 4 * bands


def well_formed(data: bytes | None, size: int) -> bool:
    """A row of the current layout: the fixed part, then at least one 8-byte word hash."""
    return data is not None and len(data) > size and (len(data) - size) % 8 == 0


def kind(num_perm: int, bands: int) -> str:
    return f"{version()}{num_perm}x{bands}"


def keeps(kit: Kit) -> bool:
    return bool(getattr(kit.store, "keeps_example_data", False))


def save(kit: Kit, index: TaskIndex, sketches: Sequence[Sketch]) -> None:
    """Write the rows of `sketches` (examples just indexed); a store that cannot is logged, not an error: the
    next process sketches those examples again."""
    rows = [(sk.example_id, sk.content_hash, sk.packed(index.num_perm))
            for sk in sketches if sk.bands is not None and sk.content_hash]
    if not rows or not keeps(kit):
        return
    try:
        kit.store.save_example_data(kind(index.num_perm, index.bands), rows)
    except StoreError as exc:
        log.debug("neardup: signatures not saved (%s); a new process computes them again", exc)


def load(kit: Kit, task: str, num_perm: int, bands: int, budget: WordBudget | None = None) -> TaskIndex:
    """The task's index: saved signatures of its live examples, and the missing ones computed (and saved).
    Its `build_seconds` say where the time went and how many were loaded and computed."""
    import numpy as np

    started = time.perf_counter()
    index = TaskIndex(task, num_perm, bands, budget)
    if not keeps(kit):
        return build(kit, index, None, started)
    size = fixed_size(num_perm, bands)
    ids: list[str] = []
    blobs: list[bytes] = []
    word_blobs: list[bytes] = []
    missing: list[str] = []
    band_parts = []

    def flush() -> None:
        if not ids:
            return
        rows = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(ids), size)
        prefixes = np.ascontiguousarray(rows[:, :8]).view("<u8").astype("=u8").tobytes()
        index.add_arrays(ids, prefixes, rows[:, 8:8 + num_perm].tobytes(), None, word_blobs)
        band_parts.append(np.ascontiguousarray(rows[:, 8 + num_perm:]).view("<u4").astype(np.uint32))
        ids.clear()
        blobs.clear()
        word_blobs.clear()

    for example_id, data in kit.store.iter_example_data(kind(num_perm, bands), ExampleQuery(task=task, where=LIVE)):
        if well_formed(data, size):
            ids.append(example_id)
            blobs.append(data[:size])  # type: ignore[index]
            word_blobs.append(data[size:])  # type: ignore[index]
            if len(ids) >= LOAD_CHUNK:
                flush()
        else:
            missing.append(example_id)
    flush()
    loaded = len(index.ids)
    read = time.perf_counter() - started
    t0 = time.perf_counter()
    if band_parts:
        bands = np.concatenate(band_parts)
        band_parts.clear()  # before the insert, which makes its sorted entries: 72 MB less at the peak at 1M
        index.lsh.insert(np.arange(loaded), bands)
        del bands
    index.build_seconds = {"read": read, "insert": time.perf_counter() - t0, "loaded": loaded}
    if not loaded and missing:  # nothing of this version: signatures of an older one are of no use
        try:
            kit.store.drop_example_data(PREFIX, keep_prefix=version())
        except StoreError as exc:
            log.debug("neardup: old signatures not dropped (%s)", exc)
    return build(kit, index, missing, started)


def word_sets(kit: Kit, index: TaskIndex, ids: Sequence[str]) -> dict[str, frozenset[int]]:
    """The word sets (`index.word_set`) of the stored examples `ids`, for confirming candidates: from their saved
    rows (one query per ID_CHUNK ids, no example read), else (no current row: saved by no process yet, a store
    without `ExampleDataStore`) from the examples. An id missing from the result is gone from the store."""
    found: dict[str, frozenset[int]] = {}
    missing = list(ids)
    if keeps(kit) and ids:
        size, missing = fixed_size(index.num_perm, index.bands), []
        current = kind(index.num_perm, index.bands)
        for first in range(0, len(ids), ID_CHUNK):
            chunk = ExampleQuery(ids=tuple(ids[first:first + ID_CHUNK]))
            for example_id, data in kit.store.iter_example_data(current, chunk):
                if well_formed(data, size):
                    found[example_id] = unpack_words(data[size:])  # type: ignore[index]
                else:
                    missing.append(example_id)
    for first in range(0, len(missing), ID_CHUNK):
        for example in kit.store.iter_examples(ExampleQuery(ids=tuple(missing[first:first + ID_CHUNK]))):
            found[example.id] = word_set(words(example.inputs, example.outputs))
    return found


def build(kit: Kit, index: TaskIndex, missing: list[str] | None, started: float) -> TaskIndex:
    """Sketch and index the task's live examples whose signatures were not loaded: `missing` ids (fetched by
    id), or all of them (streamed) when `missing` is None or is all there is."""
    spent = {"sketch": 0.0, "insert": index.build_seconds.get("insert", 0.0), "save": 0.0}
    loaded = len(index)
    computed = 0

    def add(chunk: list[Example]) -> None:
        nonlocal computed
        t0 = time.perf_counter()
        sketches = sketch(chunk, index.num_perm, index.bands)
        t1 = time.perf_counter()
        index.add(sketches)
        t2 = time.perf_counter()
        save(kit, index, sketches)
        spent["sketch"] += t1 - t0
        spent["insert"] += t2 - t1
        spent["save"] += time.perf_counter() - t2
        computed += len(chunk)

    chunk: list[Example] = []
    if missing is None or (missing and not loaded):
        source = kit.store.iter_examples(ExampleQuery(task=index.task, where=LIVE))
    else:
        source = (ex for first in range(0, len(missing), ID_CHUNK)
                  for ex in kit.store.iter_examples(ExampleQuery(ids=tuple(missing[first:first + ID_CHUNK]),
                                                                 where=LIVE)))
    for example in source:
        chunk.append(example)
        if len(chunk) >= BUILD_CHUNK:
            add(chunk)
            chunk = []
    if chunk:
        add(chunk)
    total = time.perf_counter() - started
    index.build_seconds = {"total": total, "read": total - spent["sketch"] - spent["insert"] - spent["save"],
                           **spent, "loaded": loaded, "computed": computed}
    kit.log.info("neardup: index of task %r: %d signatures loaded, %d computed, in %.2f s (reading the store "
                 "%.2f s, words and MinHashes %.2f s, LSH insert %.2f s, saving %.2f s; %d bands of %d rows)",
                 index.task, loaded, computed, total, index.build_seconds["read"], spent["sketch"],
                 spent["insert"], spent["save"], index.bands, index.num_perm // index.bands)
    return index
