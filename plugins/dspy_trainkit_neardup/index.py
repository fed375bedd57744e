"""The near-duplicate index of one open kit: per task, the MinHash signatures of its stored examples (made by
rensa, a Rust implementation, in one call per batch) in a locality-sensitive hashing (LSH) index (`bands.py`),
kept in memory.

An index is built the first time a task is checked, from the task's stored examples with status accepted or
candidate, and then kept current from `on_data_changed` events: added examples go in (with the sketches
`validate` already made for them, or fetched by id when there are none), examples that are rejected, archived,
edited or gone are taken out or re-indexed. Indexes live in a `WeakKeyDictionary` keyed by the kit, so two kits
(or two tests) never share one and an index goes away with its kit.

The LSH cuts each MinHash of `num_perm` slots into `bands` bands of `rows` slots; two examples become candidates
when one band is equal. The shape is chosen per task from the lowest threshold its settings use (`lsh_shape`).
Per indexed example the index holds its id, a 64-bit prefix of its content hash (to tell exact duplicates, which
the core handles, from near ones), one 32-bit hash per band (in `bands.BandIndex`) and a compact signature: one
byte of each MinHash slot ("b-bit MinHash", `num_perm` bytes), from which the similarity of a candidate is
estimated. Keeping rensa's MinHash objects instead would cost ~1.2 KB per example. A batch is sketched with one
rensa call and queried with one LSH query (`TaskIndex.candidates`), and the similarities of all its candidate
pairs are estimated in one numpy operation (the signatures viewed as a 2-D array, the estimate the share of equal
columns): templated text makes dozens of candidates per example, and a Python call per pair cost more than the
rest of intake. The exact similarity that confirms a candidate compares 64-bit hashes of the words (`word_set`),
which are saved with the signature (`persist.py`), so confirming a stored candidate reads its saved row, not the
example.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import weakref
from array import array
from collections.abc import Collection, Iterable, Iterator, Sequence
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

import attrs

from dspy_trainkit.pluginkit import ExampleQuery, available_cores, block_in_this_thread

from . import rules
from .bands import BandIndex, band_hashes
from .text import words

if TYPE_CHECKING:
    from dspy_trainkit.pluginkit import Event, Example, Kit

SEED = 20240601  # fixed, so that signatures made at different times compare (rensa's algorithm version aside)
#: Chance that two different slot values agree in the byte a compact signature keeps: b-bit MinHash corrects it.
_CHANCE = 1 / 256
#: MinHash sizes an index may use: at least 128 slots (standard error of the estimate <= 0.032 near 0.85).
MIN_PERM, MAX_PERM = 128, 192
#: The LSH finds a pair whose similarity equals the threshold with at least this probability.
RECALL = 0.99
#: Statuses that are indexed: accepted and candidate (rejected and archived examples are not compared against).
LIVE = (("status", "!=", "rejected"), ("status", "!=", "archived"))
BUILD_CHUNK = 5_000  # examples sketched at a time while building from the store
ID_CHUNK = 500  # ids per store query
#: Kinds of change that leave content and status as they were: nothing to update.
UNCHANGED = frozenset({"rescored", "skipped", "used", "snapshot_created"})
#: Kinds of change that only move statuses: content stays, so indexed signatures stay valid.
STATUS_ONLY = frozenset({"status_changed"})
#: Candidate pairs whose similarity is estimated at a time: the size of the buffers each estimating thread keeps
#: (`_scratch`: two of pairs x num_perm bytes, 2.6 MB each at the default shape) however many candidates
#: templated text makes.
PAIR_CHUNK = 16_384
#: Sketches whose candidates are gathered at a time: on templated text a sketch has a candidate for every few
#: hundred stored examples (thousands at a million), so a whole batch's pairs could take hundreds of MB.
QUERY_CHUNK = 128
#: Candidate pairs whose kept word hashes are compared at a time (`TaskIndex.jaccard_kept`): their words, laid end
#: to end, are the temporary memory (8,192 pairs of 40-word texts: ~3 MB an array).
WORD_PAIR_CHUNK = 8_192
#: Words whose 64-bit hash is remembered (a word recurs in thousands of texts); the cache starts afresh when full.
WORD_CACHE = 1 << 20
#: Bytes of indexed examples' word hashes kept in memory per open kit, all its tasks' indexes together
#: (`TaskIndex.jaccard_kept`), so that confirming a stored candidate reads nothing: 64 MiB holds the words of
#: ~270,000 templated QA examples (30 words each). Examples indexed after it is spent are confirmed from the
#: store (`persist.word_sets`), as before.
WORDS_BUDGET = 64 << 20
_WORD_HASHES: dict[str, int] = {}
#: rensa hashes large batches on a rayon thread pool; a process forked after that (multiprocessing's default on
#: Linux, pre-fork servers) inherits a pool whose threads are gone, and its first large batch waits forever. With
#: this batch size rensa stays in the calling thread (measured: the same speed at our 1,000-example batches).
os.environ.setdefault("RENSA_DOC_PAR_BATCH_SIZE", "1000000000")
#: Threads that find and estimate a batch's candidates, QUERY_CHUNK sketches each (numpy lets go of the GIL while
#: it gathers and compares signatures, the bulk of a templated batch's check): one per core this process may run
#: on, at most 4. With one core the calling thread does it all.
MAX_THREADS = 4
_POOL: Any = None
_POOL_LOCK = threading.Lock()


def _thread_pool() -> Any:
    """The shared pool of candidate threads (made on first use; a forked child makes its own)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            from concurrent.futures import ThreadPoolExecutor

            _POOL = ThreadPoolExecutor(max_workers=min(MAX_THREADS, available_cores()),
                                       thread_name_prefix="trainkit-neardup", initializer=block_in_this_thread)
        return _POOL


def _forget_pool() -> None:
    global _POOL
    _POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def lsh_shape(threshold: float) -> tuple[int, int]:
    """`(num_perm, bands)` for an index that must find pairs of similarity `threshold`: the most rows per band
    (the fewest chance candidates below the threshold) such that a pair at the threshold shares a band with
    probability >= RECALL within MAX_PERM slots. 0.85 gives 18 bands of 9 rows (162 slots): a pair is found with
    probability 0.991 at 0.85, 0.92 at 0.8, 0.52 at 0.7, 0.035 at 0.5."""
    for rows in range(MAX_PERM // 2, 0, -1):
        share = threshold ** rows  # chance that one band of a pair at the threshold is equal
        if share < 1e-9:
            continue
        bands = 1 if share >= 1 else math.ceil(math.log(1 - RECALL) / math.log1p(-share))
        bands = max(bands, math.ceil(MIN_PERM / rows))
        if bands * rows <= MAX_PERM:
            return bands * rows, bands
    return MAX_PERM, MAX_PERM


def found_probability(similarity: float, num_perm: int, bands: int) -> float:
    """The chance that an index of this shape makes a pair of this similarity a candidate."""
    return 1 - (1 - similarity ** (num_perm // bands)) ** bands


def half_found(num_perm: int, bands: int) -> float:
    """The similarity at which an index of this shape finds half of the pairs."""
    return (1 - 0.5 ** (1 / bands)) ** (bands / num_perm)


def jaccard(a: Collection[Any], b: Collection[Any]) -> float:
    """The exact Jaccard similarity of two word sets (or of the sets of their words' 64-bit hashes, see
    `word_set`): what the MinHash estimates, and what a finding reports."""
    if not a and not b:
        return 1.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)


def confirm_from(cut: float, num_perm: int) -> float:
    """The estimate from which a candidate's exact similarity is worth computing when `cut` is the least that
    counts: three standard errors of the estimate below it (0.108 below the 0.70 novelty floor with 162 slots),
    so a pair at `cut` whose estimate came out low is still confirmed, and only pairs clearly below are skipped."""
    return cut - 3 * math.sqrt(max(cut * (1 - cut), 0.01) / num_perm)


def similarity(a: bytes, b: bytes, num_perm: int) -> float:
    """Estimated Jaccard similarity from two compact signatures (`num_perm` bytes each): the share of equal
    bytes, corrected for the 1/256 chance that one byte of two different slot values agrees. `estimates` is the
    same for many pairs at once."""
    import numpy as np

    equal = int(np.count_nonzero(np.frombuffer(a, np.uint8) == np.frombuffer(b, np.uint8))) / num_perm
    return max(0.0, (equal - _CHANCE) / (1 - _CHANCE))


def estimates(left: Any, right: Any, left_rows: Any, right_rows: Any) -> Any:
    """`similarity` of the pairs (`left[left_rows[i]]`, `right[right_rows[i]]`) of rows of two `(n, num_perm)`
    uint8 signature arrays, as a float64 array: the same values, in numpy, PAIR_CHUNK pairs at a time.

    The rows are gathered with `np.take` (3x faster than fancy indexing for rows) into buffers this thread keeps
    (`_scratch`) and compared in place: fresh temporaries per chunk (megabytes, so the allocator maps new pages,
    a fault per 4 KB touched) made the estimate about twice as slow (125 against 68 ms a 1,000-record batch at
    99,000 stored, line-profiled; see benchmarks/neardup_pairs.py)."""
    import numpy as np

    num_perm = left.shape[1]
    equal = np.empty(len(left_rows), dtype=np.uint8)  # a count <= MAX_PERM < 256 fits in a byte
    theirs, mine = _scratch(num_perm)
    for start in range(0, len(left_rows), PAIR_CHUNK):
        stop = min(start + PAIR_CHUNK, len(left_rows))
        same, other = theirs[:stop - start], mine[:stop - start]
        # mode "clip" (the rows are in range: it changes nothing) because with the default "raise" numpy
        # gathers into a temporary of its own and copies it to `out`
        np.take(right, right_rows[start:stop], axis=0, out=same, mode="clip")
        np.take(left, left_rows[start:stop], axis=0, out=other, mode="clip")
        np.equal(same, other, out=same.view(np.bool_))
        # summed as bytes into bytes: 3x faster than count_nonzero along an axis (which converts to intp), and
        # faster than a uint16 sum, which casts
        np.sum(same, axis=1, dtype=np.uint8, out=equal[start:stop])
    return np.maximum(0.0, (equal / num_perm - _CHANCE) / (1 - _CHANCE))


_SCRATCH = threading.local()


def _scratch(num_perm: int) -> tuple[Any, Any]:
    """This thread's two `(PAIR_CHUNK, num_perm)` uint8 buffers for `estimates` (5.3 MB at the default shape),
    made on first use and kept."""
    import numpy as np

    kept = getattr(_SCRATCH, "buffers", None)
    if kept is None or kept[0].shape != (PAIR_CHUNK, num_perm):
        kept = _SCRATCH.buffers = (np.empty((PAIR_CHUNK, num_perm), np.uint8),
                                   np.empty((PAIR_CHUNK, num_perm), np.uint8))
    return kept


def word_set(found: Iterable[str]) -> frozenset[int]:
    """The 64-bit hashes (blake2b, the same in every process) of a text's words: their Jaccard similarity is the
    words' own (a collision of two of a pair's words is a 2**-64 event), in 8 bytes a word that can be saved and
    read back instead of the example. `word_sets_of` makes many at once."""
    return word_sets_of([list(found)])[0]


def word_sets_of(word_lists: Sequence[Sequence[str]]) -> list[frozenset[int]]:
    """`word_set` of each word list, hashing each distinct word of them once: the batch's distinct words are
    looked up in the process's cache (a templated batch repeats a few hundred words, and each text adds a few of
    its own, such as numbers) into a dict of the batch's own, so that each text then costs one C-level lookup a
    word. The texts read that dict, never the shared cache, which another thread may empty meanwhile."""
    cache = _WORD_HASHES
    batch: dict[str, int] = {}
    new: dict[str, int] = {}
    for word in set().union(*word_lists):
        value = cache.get(word)
        if value is None:
            value = new[word] = _word_hash(word)
        batch[word] = value
    if new:
        if len(cache) + len(new) > WORD_CACHE:
            cache.clear()
        cache.update(new)
    get = batch.__getitem__
    return [frozenset(map(get, found)) for found in word_lists]


def _word_hash(word: str) -> int:
    return int.from_bytes(blake2b(word.encode(), digest_size=8).digest(), "little")


def pack_words(hashes: Collection[int]) -> bytes:
    """A word set as saved: its hashes sorted, little-endian uint64."""
    packed = array("Q", sorted(hashes))
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def bulk_jaccard(sketches: Sequence[Sketch], numbers: Any, stored: Any, lengths: Any) -> Any:
    """`jaccard(sketches[numbers[i]].word_hashes, <the i-th word set>)` for each i, as a float64 array, where the
    word sets are `stored` (uint64 word hashes, each set's distinct, laid end to end) cut by `lengths`: the same
    values as `jaccard`, in numpy for all pairs at once. Each stored word is looked up among its sketch's (sorted
    `sketch * V + word` codes over the vocabulary of the V words of the sketches involved) and the hits counted
    per pair."""
    import numpy as np

    if not len(numbers):
        return np.zeros(0)
    owner = np.repeat(np.arange(len(numbers)), lengths)
    used = np.unique(numbers)
    mine = [np.frombuffer(sketches[i].packed_words(), dtype="<u8") for i in used.tolist()]  # made once a sketch
    sizes = np.array([len(m) for m in mine], dtype=np.int64)
    vocabulary, word = np.unique(np.concatenate(mine), return_inverse=True)
    size = len(vocabulary)
    codes = np.sort(np.repeat(np.arange(len(used)), sizes) * size + word.ravel())
    found = np.minimum(np.searchsorted(vocabulary, stored), size - 1)
    local = np.searchsorted(used, numbers)
    wanted = local[owner] * size + found
    at = np.minimum(np.searchsorted(codes, wanted), len(codes) - 1)
    hit = (vocabulary[found] == stored) & (codes[at] == wanted)
    shared = np.bincount(owner[hit], minlength=len(numbers))
    return shared / (sizes[local] + np.asarray(lengths) - shared)


def hash_prefix(content_hash: str) -> int:
    """The first 64 bits of a content hash: equal prefixes mean the same content (the core's exact dedup)."""
    return int(content_hash[:16], 16)


@attrs.define(eq=False)
class Sketch:
    """One example's compact signature and band hashes, made once per batch and shared by validate, score and
    the index."""

    example_id: str
    task: str
    hash_prefix: int
    bands: Any  # numpy uint32 array of its band hashes, or None when the example has no words (nothing to compare)
    signature: bytes = b""  # the compact signature (num_perm bytes)
    #: `word_set` of its words: the exact similarity of a candidate pair is that of their word hashes (a
    #: collision of two words of a pair is a 2**-64 event), within a batch as against a stored example
    word_hashes: frozenset[int] = frozenset()
    stored_similarity: float | None = None  # the largest similarity to an indexed example (set by validate)
    #: (id, similarity) of the earlier examples of its batch at or above the novelty floor (set by validate)
    batch_similar: list[tuple[str, float]] = attrs.field(factory=list)
    content_hash: str = ""  # the example's full content hash (what persisted signatures are checked against)
    _packed_words: bytes = b""

    def packed_words(self) -> bytes:
        """`pack_words(word_hashes)`, made once: the index keeps it and `packed` saves it."""
        if not self._packed_words:
            self._packed_words = pack_words(self.word_hashes)
        return self._packed_words

    def packed(self, num_perm: int) -> bytes:
        """What is persisted for it (see `persist.py`): hash prefix, signature, band hashes, word hashes."""
        return (self.hash_prefix.to_bytes(8, "little") + self.signature + self.bands.astype("<u4").tobytes()
                + self.packed_words())


def digests(word_lists: Sequence[Sequence[str]], num_perm: int) -> Any:
    """`(n, num_perm)` uint32 MinHash digests of the word lists (all non-empty), made by rensa in one call."""
    import numpy as np
    from rensa import RMinHash

    if not word_lists:
        return np.zeros((0, num_perm), dtype=np.uint32)
    matrix = RMinHash.digest_matrix_from_token_sets(word_lists, num_perm, SEED)
    flat = array("I")  # the rows' ints copied into one buffer: twice as fast as np.array of the list of lists
    for row in matrix.to_rows():
        flat.extend(row)
    return np.frombuffer(flat, dtype=np.uint32).reshape(len(word_lists), num_perm)


def sketch(examples: Sequence[Example], num_perm: int, bands: int | None = None) -> list[Sketch]:
    """Sketches of `examples` (one call into rensa for all of them); band hashes only when `bands` is given."""
    word_lists = [words(ex.inputs, ex.outputs) for ex in examples]
    made = digests([w for w in word_lists if w], num_perm)
    low = made.astype("u1")  # one byte of each 32-bit slot (the lowest; any fixed one serves)
    cut = band_hashes(made, bands) if bands else made[:, :0]
    sketches, position = [], 0
    for ex, found, hashes in zip(examples, word_lists, word_sets_of(word_lists), strict=True):
        hashed, signature = None, b""
        if found:
            signature = low[position].tobytes()
            hashed = cut[position]
            position += 1
        sketches.append(Sketch(ex.id, ex.task, hash_prefix(ex.content_hash), hashed, signature, hashes,
                               content_hash=ex.content_hash))
    return sketches


class WordBudget:
    """What is left of WORDS_BUDGET for the kit whose indexes share it."""

    def __init__(self) -> None:
        self.left = WORDS_BUDGET


class TaskIndex:
    """The indexed examples of one task: ids, content-hash prefixes and compact signatures by key, and the LSH."""

    def __init__(self, task: str, num_perm: int, bands: int, budget: WordBudget | None = None):
        self.task = task
        self.budget = budget or WordBudget()
        self.num_perm = num_perm
        self.bands = bands
        self.lsh = BandIndex(bands)
        self.ids: list[str | None] = []  # key -> example id; None once removed
        self.keys: dict[str, int] = {}  # example id -> key
        self.hashes = array("Q")  # key -> content hash prefix
        self.signatures = bytearray()  # key -> num_perm bytes
        self.alive = bytearray()  # key -> 1 while indexed, 0 once removed (what `ids[key] is None` says, for numpy)
        self.word_data = bytearray()  # word hashes kept in memory (packed as `pack_words`), WORDS_BUDGET at most
        self.word_ends = array("q")  # key -> end of its word hashes in word_data; its start is the previous key's end
        self.word_kept = bytearray()  # key -> 1 when its word hashes are in word_data
        self.build_seconds: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, sketches: Iterable[Sketch]) -> None:
        import numpy as np

        chosen = [sk for sk in sketches if sk.bands is not None]
        if not chosen:
            return
        self.add_arrays([sk.example_id for sk in chosen], [sk.hash_prefix for sk in chosen],
                        b"".join(sk.signature for sk in chosen),
                        np.stack([sk.bands for sk in chosen]),
                        [sk.packed_words() for sk in chosen])

    def add_arrays(self, ids: Sequence[str], hashes: Sequence[int] | bytes, signatures: bytes, bands: Any,
                   words: Sequence[bytes] | None = None) -> None:
        """Index examples `ids` with their content-hash prefixes (ints, or native uint64 bytes), compact
        signatures (`num_perm` bytes each, concatenated), band hashes (`(n, bands)` uint32) and, when given,
        their word hashes (packed as `pack_words`; kept while WORDS_BUDGET allows): one LSH insert for all. With
        `bands` None the LSH is left to the caller (`lsh.insert` over the new keys)."""
        for example_id in ids:
            if example_id in self.keys:
                self.remove(example_id)
        first = len(self.ids)
        self.ids.extend(ids)
        self.keys.update(zip(ids, range(first, first + len(ids)), strict=True))
        if isinstance(hashes, bytes | bytearray | memoryview):
            self.hashes.frombytes(hashes)
        else:
            self.hashes.extend(hashes)
        self.signatures += signatures
        self.alive += b"\x01" * len(ids)
        self._keep_words(words, len(ids))
        if bands is not None:
            self.lsh.insert(range(first, first + len(ids)), bands)

    def _keep_words(self, words: Sequence[bytes] | None, count: int) -> None:
        """Append the word hashes of `count` new keys while the budget allows (none kept for the rest)."""
        data, ends, kept, budget = self.word_data, self.word_ends, self.word_kept, self.budget
        end = len(data)
        if words is None or budget.left <= 0:
            ends.extend([end] * count)
            kept += bytes(count)
            return
        for packed in words:
            if len(packed) <= budget.left:
                data += packed
                end += len(packed)
                budget.left -= len(packed)
                kept.append(1)
            else:
                kept.append(0)
            ends.append(end)

    def jaccard_kept(self, sketches: Sequence[Sketch], numbers: Any, keys: Any) -> Any:
        """`jaccard(sketches[numbers[i]].word_hashes, <the word hashes of indexed key keys[i]>)` for each pair,
        as a float64 array, NaN where the key's words are not kept in memory (see WORDS_BUDGET): every candidate
        near the cut (hundreds of thousands per 100k templated records), in one `bulk_jaccard`."""
        import numpy as np

        values = np.full(len(keys), np.nan)
        kept = np.frombuffer(self.word_kept, dtype=np.bool_)[keys]
        if not kept.any():
            return values
        ends = np.frombuffer(self.word_ends, dtype=np.int64)
        data = np.frombuffer(self.word_data, dtype="<u8")
        try:
            for first in range(0, len(keys), WORD_PAIR_CHUNK):  # each pair's words are laid out: bounded memory
                pairs = first + np.flatnonzero(kept[first:first + WORD_PAIR_CHUNK])
                chunk = keys[pairs]
                stops = ends[chunk] // 8
                starts = np.where(chunk > 0, ends[np.maximum(chunk - 1, 0)], 0) // 8
                lengths = stops - starts
                element = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths - starts, lengths)
                values[pairs] = bulk_jaccard(sketches, numbers[pairs], data[element].astype(np.uint64), lengths)
        finally:
            del ends, data  # views of growable buffers: they must not outlive the call
        return values

    def remove(self, example_id: str) -> bool:
        key = self.keys.pop(example_id, None)
        if key is None:
            return False
        self.ids[key] = None
        self.alive[key] = 0
        dead = len(self.ids) - len(self.keys)
        if dead > 10_000 and dead > len(self.keys):  # most entries of the LSH are dead: drop them
            import numpy as np

            self.lsh.compact(np.array([i is not None for i in self.ids], dtype=bool))
        return True

    def hash_of(self, example_id: str) -> int | None:
        key = self.keys.get(example_id)
        return self.hashes[key] if key is not None else None

    def candidates(self, sketches: Sequence[Sketch], at_least: Sequence[float] | None = None,
                   *, other_content: bool = False) -> tuple[Any, Any, Any]:
        """`(sketch numbers, keys, estimated similarities)` of the indexed examples that share a band with each
        sketch, as numpy arrays sorted by sketch number then key, leaving out the example itself (same id: an
        edited or re-scored example is not its own near-duplicate) and removed examples; with `at_least` (one
        value per sketch) only estimates at or above the sketch's value, with `other_content` only examples
        whose content-hash prefix differs from the sketch's (identical content is the core's exact dedup). One
        LSH query and one numpy estimate for the whole batch, however many candidates there are."""
        import numpy as np

        rows = [i for i, sk in enumerate(sketches) if sk.bands is not None]
        chunks = [rows[first:first + QUERY_CHUNK] for first in range(0, len(rows) if self.keys else 0, QUERY_CHUNK)]
        if len(chunks) > 1 and available_cores() > 1:  # chunks only read the index: the caller holds the kit's lock
            parts = list(_thread_pool().map(lambda chunk: self._candidates(sketches, chunk, at_least, other_content),
                                            chunks))
        else:
            parts = [self._candidates(sketches, chunk, at_least, other_content) for chunk in chunks]
        if not parts:
            nothing = np.zeros(0, dtype=np.int64)
            return nothing, nothing, np.zeros(0)
        return tuple(np.concatenate(part) for part in zip(*parts, strict=True))  # type: ignore[return-value]

    def _candidates(self, sketches: Sequence[Sketch], rows: list[int], at_least: Sequence[float] | None,
                    other_content: bool) -> tuple[Any, Any, Any]:
        """`candidates` of `sketches[i] for i in rows` (all with bands). On templated text nearly every pair the
        LSH returns is estimated below `at_least`, so the pairs are estimated as the LSH returns them (a pair
        sharing two bands comes twice, with the same value) and only the few that reach it are filtered and made
        unique."""
        import numpy as np

        owner, keys = self.lsh.query_entries(np.stack([sketches[i].bands for i in rows]))
        mine = np.frombuffer(b"".join(sketches[i].signature for i in rows), dtype=np.uint8).reshape(len(rows), -1)
        stored = np.frombuffer(self.signatures, dtype=np.uint8).reshape(-1, self.num_perm)
        values = estimates(mine, stored, owner, keys)
        del stored  # a view of a growable buffer: it must not outlive the call
        if at_least is not None:
            enough = values >= np.asarray(at_least, dtype=np.float64)[np.asarray(rows, dtype=np.int64)][owner]
            owner, keys, values = owner[enough], keys[enough], values[enough]
        alive = np.frombuffer(self.alive, dtype=np.bool_)
        own = np.array([self.keys.get(sketches[i].example_id, -1) for i in rows], dtype=np.int64)
        keep = alive[keys] & (keys != own[owner])
        del alive
        if other_content:
            prefixes = np.array([sketches[i].hash_prefix for i in rows], dtype=np.uint64)
            keep &= np.frombuffer(self.hashes, dtype=np.uint64)[keys] != prefixes[owner]
        pairs, first = np.unique((owner[keep].astype(np.uint64) << np.uint64(32)) | keys[keep].astype(np.uint64),
                                 return_index=True)
        numbers = np.asarray(rows, dtype=np.int64)[(pairs >> np.uint64(32)).astype(np.int64)]
        return numbers, (pairs & np.uint64(0xFFFFFFFF)).astype(np.int64), values[keep][first]

    def neighbours_of(self, sketches: Sequence[Sketch]) -> list[list[tuple[str, int, float]]]:
        """For each sketch, `(example id, content hash prefix, estimated similarity)` of its LSH candidates
        (see `candidates`)."""
        found: list[list[tuple[str, int, float]]] = [[] for _ in sketches]
        numbers, keys, values = self.candidates(sketches)
        ids, hashes = self.ids, self.hashes
        for number, key, value in zip(numbers.tolist(), keys.tolist(), values.tolist(), strict=True):
            found[number].append((ids[key], hashes[key], value))  # type: ignore[arg-type]
        return found

    def neighbours(self, sk: Sketch) -> list[tuple[str, int, float]]:
        """`neighbours_of` one sketch."""
        return self.neighbours_of([sk])[0]


class KitState:
    """Everything the plugin keeps for one open kit."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.indexes: dict[str, TaskIndex] = {}
        self.pending: dict[str, Sketch] = {}  # sketches made by validate, until their 'added' event arrives
        self.rules: dict[tuple[str, str | None], rules.Rule] = {}
        self.checked = False
        self.words = WordBudget()  # shared by the kit's task indexes

    def rule(self, kit: Kit, task: str, domain: str | None) -> rules.Rule:
        found = self.rules.get((task, domain))
        if found is None:
            if not self.checked:
                rules.check_all(kit)
                self.checked = True
            found = self.rules[(task, domain)] = rules.rule(kit, task, domain)
        return found

    def index(self, kit: Kit, task: str) -> TaskIndex:
        """The task's index, built from the store the first time it is asked for."""
        index = self.indexes.get(task)
        if index is None:
            self.rule(kit, task, None)  # checks the settings first
            from .persist import load

            index = load(kit, task, *lsh_shape(rules.lowest_threshold(kit, task)), self.words)
            self.indexes[task] = index
        return index

    def remember(self, sketches: Iterable[Sketch], limit: int) -> None:
        if len(self.pending) > limit:  # left over from batches that were dry runs or failed: start afresh
            self.pending.clear()
        self.pending.update((sk.example_id, sk) for sk in sketches)

    # -- keeping indexes current -------------------------------------------------------------------------
    def changed(self, kit: Kit, event: Event) -> None:
        kind, example_ids = event.kind, event.example_ids
        if kind in UNCHANGED or not example_ids:
            return
        # intake's "added" event names the examples it stored as rejected: the others are live, no store query
        rejected = event.details.get("rejected") if kind == "added" else None
        known_rejected = set(rejected) if isinstance(rejected, list) else None
        for start in range(0, len(example_ids), ID_CHUNK):
            chunk = tuple(example_ids[start:start + ID_CHUNK])
            if kind == "added":
                self._added(kit, chunk, known_rejected)
            else:
                self._refresh(kit, chunk, content_may_change=kind not in STATUS_ONLY)

    def _live(self, kit: Kit, ids: tuple[str, ...]) -> set[str]:
        return set(kit.store.iter_ids(ExampleQuery(ids=ids, where=LIVE)))

    def _sketch_indexed(self, kit: Kit, ids: list[str]) -> Iterator[Sketch]:
        """Sketches of the stored examples with these ids whose task has an index (in that index's shape)."""
        by_task: dict[str, list[Example]] = {}
        for example in kit.store.iter_examples(ExampleQuery(ids=tuple(ids))):
            by_task.setdefault(example.task, []).append(example)
        for task, examples in by_task.items():
            index = self.indexes.get(task)
            if index is not None:
                yield from sketch(examples, index.num_perm, index.bands)
            else:
                for example in examples:  # its task changed (not possible today, but cheap to honour)
                    for other in self.indexes.values():
                        other.remove(example.id)

    def _added(self, kit: Kit, ids: tuple[str, ...], rejected: set[str] | None) -> None:
        from .persist import save

        live = self._live(kit, ids) if rejected is None else set(ids) - rejected
        ready: dict[str, list[Sketch]] = {}
        missing = []
        for example_id in ids:
            sk = self.pending.pop(example_id, None)
            if example_id not in live:
                continue
            if sk is None:
                missing.append(example_id)
            elif sk.task in self.indexes:
                ready.setdefault(sk.task, []).append(sk)
        if missing:  # added by a path that did not validate here (another kit object on the same store)
            for sk in self._sketch_indexed(kit, missing):
                ready.setdefault(sk.task, []).append(sk)
        for task, sketches in ready.items():
            self.indexes[task].add(sketches)
            save(kit, self.indexes[task], sketches)

    def _refresh(self, kit: Kit, ids: tuple[str, ...], *, content_may_change: bool) -> None:
        from .persist import save

        live = self._live(kit, ids)
        fetch = []
        for example_id in ids:
            self.pending.pop(example_id, None)
            indexed = [index for index in self.indexes.values() if example_id in index.keys]
            if example_id not in live:
                for index in indexed:
                    index.remove(example_id)
            elif content_may_change or not indexed:
                fetch.append(example_id)
        for sk in self._sketch_indexed(kit, fetch) if fetch else ():
            for task, index in self.indexes.items():
                if task != sk.task:
                    index.remove(sk.example_id)
            index = self.indexes[sk.task]
            if index.hash_of(sk.example_id) != sk.hash_prefix:
                index.add([sk])
                save(kit, index, [sk])


_STATES: weakref.WeakKeyDictionary[Any, KitState] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def state_for(kit: Kit) -> KitState:
    """This kit's state, made on first use."""
    state = _STATES.get(kit)
    if state is None:
        with _STATES_LOCK:
            state = _STATES.setdefault(kit, KitState())
    return state


def existing_state(kit: Kit) -> KitState | None:
    return _STATES.get(kit)


def build(kit: Kit, task: str, num_perm: int, bands: int) -> TaskIndex:
    """An index of the task's stored examples with status accepted or candidate, every one sketched from the
    store (saved signatures are not read; see `persist.load` for what opening a kit does)."""
    from .persist import build as build_missing

    return build_missing(kit, TaskIndex(task, num_perm, bands), None, time.perf_counter())
