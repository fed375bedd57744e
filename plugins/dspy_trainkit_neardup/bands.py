"""The LSH of the near-duplicate index, in numpy arrays: each indexed example's MinHash cut into bands, each band
reduced to a 32-bit hash, kept as sorted runs of 64-bit entries `band hash << 32 | key`.

Why not rensa's `RMinHashLSH`: it holds ~780 bytes per example (78 MB per 100k measured), so a million stored
examples would need most of the 1 GiB budget for the LSH alone, and it can only be filled from MinHash objects made
from the tokens: a persisted index could not be loaded into it without re-tokenising every stored text. Here an
example costs 4 bytes per band (18 bands: 144 bytes with its key), and band hashes can be saved and loaded as they
are. rensa still makes the MinHashes (in batches, see `index.sketch`).

Inserting a batch sorts its entries into a new run; runs of similar size are merged (a binary counter), so a
stream of small batches costs O(log n) merges per entry and a query looks at O(log n) runs. Removal is left to the
caller (a key whose example is gone is skipped where candidates are read); `compact` drops dead keys' entries.
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
    entries = (hashes.astype(np.uint64) << _SHIFT) | keys.astype(np.uint64)[:, None]
    flat = entries.ravel()
    flat.sort()
    return flat


class BandIndex:
    """Sorted runs of `band hash << 32 | key` entries; keys are non-negative integers below 2**32."""

    def __init__(self, bands: int):
        self.bands = bands
        self.runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self.runs) // self.bands

    @property
    def nbytes(self) -> int:
        return sum(run.nbytes for run in self.runs)

    def insert(self, keys: Sequence[int] | np.ndarray, hashes: np.ndarray) -> None:
        """Add examples `keys` with band hashes `hashes` (`(len(keys), bands)` uint32)."""
        if len(keys) == 0:
            return
        self.runs.append(_entries(np.asarray(keys, dtype=np.int64), hashes))
        while len(self.runs) > 1 and len(self.runs[-2]) <= 2 * len(self.runs[-1]):
            last, before = self.runs.pop(), self.runs.pop()
            merged = np.concatenate((before, last))
            merged.sort(kind="stable")  # two sorted runs: timsort merges them in one pass
            self.runs.append(merged)

    def query(self, hashes: np.ndarray) -> list[np.ndarray]:
        """For each row of `hashes` (`(q, bands)` uint32), the keys sharing at least one band with it, sorted."""
        q = len(hashes)
        found: list[list[np.ndarray]] = [[] for _ in range(q)]
        if q and self.runs:
            low = hashes.astype(np.uint64).ravel() << _SHIFT
            high = low | _LOW
            for run in self.runs:
                start = np.searchsorted(run, low, side="left")
                stop = np.searchsorted(run, high, side="right")
                for i in np.flatnonzero(stop > start):
                    found[i // self.bands].append(run[start[i]:stop[i]])
        return [np.unique((np.concatenate(parts) & _LOW).astype(np.int64)) if parts else EMPTY for parts in found]

    def compact(self, alive: np.ndarray) -> None:
        """Drop the entries of keys whose `alive[key]` is false (order is kept, so runs stay sorted)."""
        self.runs = [run[alive[(run & _LOW).astype(np.int64)]] for run in self.runs]
        self.runs = [run for run in self.runs if len(run)]


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
