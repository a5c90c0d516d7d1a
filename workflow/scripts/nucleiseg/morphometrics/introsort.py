"""NumPy 1.23's argsort (kind "quicksort") of float64 values, step for step, vectorized.

CellProfiler 4.2.8.1 runs on NumPy below 1.25, whose argsort is an introsort
(npysort/quicksort.cpp, aquicksort_): median-of-three Hoare partitions, insertion sort below 17
elements, heapsort past a depth of 2 log2(n). It is not stable, so where values tie, which of
them comes last depends on every step; scipy's maximum_position and minimum_position pick among
tied values by it, and so does CellProfiler (a radial centre, a step of the enclosing-circle
search). Later NumPy sorts with SIMD on CPUs that have it, in another order. This replays the
introsort: each round partitions every pending segment at once (a Hoare partition's swaps pair
the k-th element from the left not below the pivot with the k-th from the right not above it,
until they cross), so the work is NumPy's, a few dozen passes over the array.
"""

from __future__ import annotations

import numpy as np

_SMALL = 15  # NumPy's SMALL_QUICKSORT: segments with pr - pl <= 15 are insertion-sorted


def _heapsort(values: np.ndarray, a: list) -> list:
    """NumPy's aheapsort_ on one segment (a: its indices), 1-based as there."""
    n = len(a)
    a = [0] + a
    v = values

    def sift(tmp, i, n):
        j = 2 * i
        while j <= n:
            if j < n and v[a[j]] < v[a[j + 1]]:
                j += 1
            if v[tmp] < v[a[j]]:
                a[i] = a[j]
                i, j = j, 2 * j
            else:
                break
        a[i] = tmp

    for start in range(n >> 1, 0, -1):
        sift(a[start], start, n)
    while n > 1:
        tmp = a[n]
        a[n] = a[1]
        n -= 1
        sift(tmp, 1, n)
    return a[1:]


def _swap(arrays, first, second):
    """Swap the entries at first and second in each of arrays (the indices and their values)."""
    for a in arrays:
        a[first], a[second] = a[second], a[first]


def _swap_if_less(arrays, first, second):
    """NumPy's median-of-three step: swap where value[second] < value[first]."""
    do = arrays[1][second] < arrays[1][first]
    _swap(arrays, first[do], second[do])


def _ranges(low: np.ndarray, high: np.ndarray):
    """Every position of the segments [low, high] (inclusive), and its segment."""
    sizes = high - low + 1
    segment = np.repeat(np.arange(low.size), sizes)
    start = np.cumsum(sizes) - sizes
    return np.arange(sizes.sum()) - start[segment] + low[segment], segment


def _partition(arrays, pl, pr):
    """One Hoare partition of each segment [pl, pr] of arrays = (indices, their values): the
    pivot's final position."""
    pm = pl + ((pr - pl) >> 1)
    _swap_if_less(arrays, pl, pm)
    _swap_if_less(arrays, pm, pr)
    _swap_if_less(arrays, pl, pm)
    value = arrays[1]
    pivot = value[pm]
    _swap(arrays, pm, pr - 1)
    position, segment = _ranges(pl, pr)
    seen, p = value[position], pivot[segment]
    left = (position > pl[segment]) & (position < pr[segment]) & ~(seen < p)
    right = (position < pr[segment] - 1) & ~(p < seen)
    lo, lo_seg = position[left], segment[left]  # ascending within a segment
    ro_seg = segment[right]
    n_lo = np.bincount(lo_seg, minlength=pl.size)
    n_ro = np.bincount(ro_seg, minlength=pl.size)
    first_lo, first_ro = np.cumsum(n_lo) - n_lo, np.cumsum(n_ro) - n_ro
    # the right stops, each segment's in descending order
    rank = np.arange(ro_seg.size) - first_ro[ro_seg]
    ro = np.empty_like(lo, shape=ro_seg.size)
    ro[first_ro[ro_seg] + n_ro[ro_seg] - 1 - rank] = position[right]
    pairs = np.minimum(n_lo, n_ro)
    k, seg = _ranges(np.zeros(pl.size, np.int64), pairs - 1)
    a, b = lo[first_lo[seg] + k], ro[first_ro[seg] + k]
    crossed = a >= b
    stop = np.full(pl.size, np.iinfo(np.int64).max)
    np.minimum.at(stop, seg[crossed], k[crossed])
    swap = k < stop[seg]
    _swap(arrays, a[swap], b[swap])
    pi = lo[first_lo + stop]
    before = stop > 0
    pi[before] = np.minimum(pi[before], ro[first_ro[before] + stop[before] - 1])
    _swap(arrays, pi, pr - 1)
    return pi


def argsort(values: np.ndarray, needed: np.ndarray | None = None) -> np.ndarray:
    """np.argsort(values) as NumPy 1.23 gives it (float64, no NaN). needed: a mask of the
    elements whose final places are wanted; segments without any are left unsorted (their
    places, and so everything else's, are final already), which saves most of the work."""
    v = np.ascontiguousarray(values, np.float64).ravel()
    n = v.size
    t = np.arange(n)
    if n < 2:
        return t
    arrays = (t, v.copy())
    # pending segments: bounds, depth left, whether it was popped (depth checked) or continued
    pl, pr = np.array([0]), np.array([n - 1])
    depth, popped = np.array([2 * (int(n).bit_length() - 1)]), np.array([True])
    small_l, small_r = [], []
    while pl.size:
        if needed is not None:
            position, segment = _ranges(pl, pr)
            wanted = np.bincount(segment, needed[t[position]], pl.size) > 0
            pl, pr, depth, popped = pl[wanted], pr[wanted], depth[wanted], popped[wanted]
        heap = popped & (depth < 0)
        for low, high in zip(pl[heap], pr[heap]):
            t[low:high + 1] = _heapsort(v, t[low:high + 1].tolist())
            arrays[1][low:high + 1] = v[t[low:high + 1]]
        big = ~heap & (pr - pl > _SMALL)
        small = ~heap & ~big
        small_l.append(pl[small])
        small_r.append(pr[small])
        pl, pr, depth = pl[big], pr[big], depth[big] - 1
        pi = _partition(arrays, pl, pr)
        left_smaller = pi - pl < pr - pi
        pl, pr = np.r_[pl, pi + 1], np.r_[pi - 1, pr]
        popped = np.r_[~left_smaller, left_smaller]  # the larger side is pushed, then popped
        depth = np.r_[depth, depth]
        keep = pr > pl
        pl, pr, depth, popped = pl[keep], pr[keep], depth[keep], popped[keep]
    low, high = np.concatenate(small_l), np.concatenate(small_r)
    position, segment = _ranges(low, high)
    order = np.lexsort((position, arrays[1][position], segment))  # insertion sort is stable
    t[position] = t[position[order]]
    return t


def maximum_positions(values: np.ndarray, obj: np.ndarray, n_objects: int,
                      places) -> tuple[np.ndarray, np.ndarray]:
    """Per object, the element that scipy's maximum_position picks as CellProfiler runs it:
    of the elements holding the object's largest value, the one that the sort puts last.

    values, obj: per element (an object's pixel), its value and its object (0..n_objects-1);
    places(candidates): the sort's places of the elements of the boolean mask `candidates`,
    called only where several elements tie for an object's largest value (the sort is costly).
    Returns (the chosen element per object, whether its object had a tie)."""
    top = np.full(n_objects, -np.inf)
    np.maximum.at(top, obj, values)
    at_top = values == top[obj]
    tied = np.bincount(obj[at_top], minlength=n_objects) > 1
    candidates = at_top & tied[obj]
    rank = np.arange(values.size)  # without a tie, the one element at the top
    if candidates.any():
        rank[candidates] = places(candidates)
    last = np.full(n_objects, -1)
    np.maximum.at(last, obj[at_top], rank[at_top])
    chosen = at_top & (rank == last[obj])
    element = np.empty(n_objects, np.int64)
    element[obj[chosen]] = np.flatnonzero(chosen)
    return element, tied
