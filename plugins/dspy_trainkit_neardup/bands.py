"""The LSH of the near-duplicate index, in numpy arrays: each indexed example's MinHash cut into bands, each band
reduced to a 32-bit hash, kept as sorted runs of 64-bit entries `band hash << 32 | key`.

Why not rensa's `RMinHashLSH`: it holds ~780 bytes per example (78 MB per 100k measured), so a million stored
examples would need most of the 1 GiB budget for the LSH alone, and it can only be filled from MinHash objects made
from the tokens: a persisted index could not be loaded into it without re-tokenising every stored text. Here an
example costs 4 bytes per band (18 bands: 144 bytes with its key), and band hashes can be saved and loaded as they
are. rensa still makes the MinHashes (in batches, see `index.sketch`).

Inserting a batch sorts its entries into a new run; runs of similar size are merged (a binary counter), so a
stream of small batches costs O(log n) merges per entry and a query looks at O(log n) runs; large runs get a
directory of their hash buckets, so a lookup costs the same at a million examples as at a thousand. Removal is
left to the caller (a key whose example is gone is skipped where candidates are read); `compact` drops dead keys'
entries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_LOW = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))
EMPTY = np.zeros(0, dtype=np.int64)


def band_hashes(digests: np.ndarray, bands: int) -> np.ndarray:
    """`(n, bands)` uint32 hashes of the `(n, num_perm)` uint32 MinHash digests cut into `bands` bands of
    `num_perm // bands` slots; the band's number is mixed in, so equal slots in different bands do not match.
    A chance collision of two different bands only adds a candidate, which its estimated similarity then drops."""
    n, num_perm = digests.shape
    rows = num_perm // bands
    cut = digests[:, :bands * rows].reshape(n, bands, rows).astype(np.uint64)
    with np.errstate(over="ignore"):
        h = np.broadcast_to(np.arange(bands, dtype=np.uint64) * _MIX[0], (n, bands)).copy()
        for r in range(rows):
            h ^= cut[:, :, r]
            h *= _MIX[1]
            h ^= h >> np.uint64(29)
        h *= _MIX[2]
        h ^= h >> np.uint64(32)
    return (h & _LOW).astype(np.uint32)


def _entries(keys: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Sorted entries `hash << 32 | key` of examples `keys` with band hashes `hashes` `(n, bands)`."""
    entries = hashes.astype(np.uint64)  # the one temporary of n x bands entries: shifted and filled in place
    entries <<= _SHIFT
    entries |= keys.astype(np.uint64)[:, None]
    flat = entries.ravel()
    flat.sort()
    return flat


#: Runs of at least this many entries get a directory: the offset of each bucket of their leading hash bits.
DIRECTORY_FROM = 1 << 16


class _Run:
    """One sorted run of entries, with a directory when large: a lookup then reads one bucket (~4 entries)
    instead of binary-searching the run (18M entries at a million examples: ~24 cache misses per lookup)."""

    def __init__(self, entries: np.ndarray):
        self.entries = entries
        self.bits = 0
        self.offsets: np.ndarray | None = None
        if len(entries) >= DIRECTORY_FROM:
            self.bits = min(max(int(np.log2(len(entries))) - 2, 10), 26)
            starts = np.arange((1 << self.bits) + 1, dtype=np.uint64) << np.uint64(64 - self.bits)
            self.offsets = np.searchsorted(entries, starts[:-1]).astype(np.int64)
            self.offsets = np.append(self.offsets, len(entries))

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(query numbers, keys)` of the entries whose band hash equals a query's (`queries`: uint64 hashes)."""
        if self.offsets is not None:
            bucket = (queries >> np.uint64(32 - self.bits)).astype(np.intp)
            start, stop = self.offsets[bucket], self.offsets[bucket + 1]
        else:
            start = np.searchsorted(self.entries, queries << _SHIFT, side="left")
            stop = np.searchsorted(self.entries, (queries << _SHIFT) | _LOW, side="right")
        sizes = stop - start
        owner = np.repeat(np.arange(len(queries)), sizes)
        if not len(owner):
            return owner, owner
        first = np.cumsum(sizes) - sizes
        found = self.entries[np.arange(len(owner)) - np.repeat(first - start, sizes)]
        match = (found >> _SHIFT) == queries[owner]
        return owner[match], (found[match] & _LOW).astype(np.int64)


class BandIndex:
    """Sorted runs of `band hash << 32 | key` entries; keys are non-negative integers below 2**32."""

    def __init__(self, bands: int):
        self.bands = bands
        self.runs: list[_Run] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self.runs) // self.bands

    @property
    def nbytes(self) -> int:
        return sum(run.entries.nbytes + (run.offsets.nbytes if run.offsets is not None else 0) for run in self.runs)

    def insert(self, keys: Sequence[int] | np.ndarray, hashes: np.ndarray) -> None:
        """Add examples `keys` with band hashes `hashes` (`(len(keys), bands)` uint32)."""
        if len(keys) == 0:
            return
        entries = _entries(np.asarray(keys, dtype=np.int64), hashes)
        while self.runs and len(self.runs[-1]) <= 2 * len(entries):
            merged = np.concatenate((self.runs.pop().entries, entries))
            merged.sort()
            entries = merged
        self.runs.append(_Run(entries))

    def query_entries(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(rows, keys)`: for each band a row of `hashes` (`(q, bands)` uint32) shares with a key, the pair, in
        no particular order (a pair sharing two bands comes twice): what `query_pairs` makes unique, for a caller
        that drops most pairs first."""
        if not len(hashes) or not self.runs:
            return EMPTY, EMPTY
        flat = hashes.astype(np.uint64).ravel()
        owners, keys = [], []
        for run in self.runs:
            owner, key = run.lookup(flat)
            owners.append(owner // self.bands)
            keys.append(key)
        return np.concatenate(owners), np.concatenate(keys)

    def query_pairs(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(rows, keys)`: each pair of a row of `hashes` (`(q, bands)` uint32) and a key sharing at least one
        band with it, once, sorted by row then key (int64 arrays)."""
        owners, keys = self.query_entries(hashes)
        pairs = np.unique((owners.astype(np.uint64) << _SHIFT) | keys.astype(np.uint64))
        return (pairs >> _SHIFT).astype(np.int64), (pairs & _LOW).astype(np.int64)

    def query(self, hashes: np.ndarray) -> list[np.ndarray]:
        """For each row of `hashes` (`(q, bands)` uint32), the keys sharing at least one band with it, sorted."""
        found = [EMPTY] * len(hashes)
        rows, keys = self.query_pairs(hashes)
        if len(rows):
            cuts = np.flatnonzero(np.diff(rows)) + 1
            for part_rows, part in zip(np.split(rows, cuts), np.split(keys, cuts), strict=True):
                found[int(part_rows[0])] = part
        return found

    def compact(self, alive: np.ndarray) -> None:
        """Drop the entries of keys whose `alive[key]` is false (order is kept, so runs stay sorted)."""
        runs = [run.entries[alive[(run.entries & _LOW).astype(np.int64)]] for run in self.runs]
        self.runs = [_Run(entries) for entries in runs if len(entries)]


def earlier_in_batch(hashes: np.ndarray) -> list[list[int]]:
    """For each row of `hashes` (`(n, bands)` uint32, one row per example of a batch in order), the earlier rows
    sharing at least one band with it, in ascending order: the LSH candidates within one batch."""
    n = len(hashes)
    found: list[set[int]] = [set() for _ in range(n)]
    if n > 1:
        entries = _entries(np.arange(n), hashes)
        band = entries >> _SHIFT
        same = np.flatnonzero(band[1:] == band[:-1])  # entry i+1 has the hash of entry i
        if len(same):
            rows = (entries & _LOW).astype(np.int64)
            group: list[int] = []
            previous = -2
            for i in same.tolist():
                if i != previous + 1:  # a new group of equal hashes starts at entry i
                    group = [int(rows[i])]
                later = int(rows[i + 1])
                found[later].update(group)  # rows within a group come in ascending order
                group.append(later)
                previous = i
    return [sorted(s - {row}) for row, s in enumerate(found)]  # a chance collision of two bands of one row
