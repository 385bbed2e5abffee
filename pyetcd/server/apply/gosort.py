"""Go 1.16's sort.Sort, reproduced so Range results tie-break exactly as etcd 3.5's do.

etcd sorts Range results with Go's sort.Sort, which is not stable: keys that compare equal on
the sort target (same version, same value...) come out in an order fixed by the algorithm
(pattern-defeating quicksort's predecessor: median-of-three/ninther quicksort, heapsort on deep
recursion, and a gap-6 Shell pass plus insertion sort for slices of at most 12). Clients that
page through sorted ranges see that order, so we reproduce it step by step.

``go_sort(items, less)`` sorts the list in place; ``less(x, y)`` is the element comparison.
"""
from __future__ import annotations

from typing import Callable


def go_sort(data: list, less: Callable) -> None:
    n = len(data)
    depth = 0
    i = n
    while i > 0:
        depth += 1
        i >>= 1
    _quick_sort(data, less, 0, n, depth * 2)


def _lt(data, less, i, j):
    return less(data[i], data[j])


def _swap(data, i, j):
    data[i], data[j] = data[j], data[i]


def _insertion_sort(data, less, a, b):
    for i in range(a + 1, b):
        j = i
        while j > a and less(data[j], data[j - 1]):
            data[j], data[j - 1] = data[j - 1], data[j]
            j -= 1


def _sift_down(data, less, lo, hi, first):
    root = lo
    while True:
        child = 2 * root + 1
        if child >= hi:
            return
        if child + 1 < hi and less(data[first + child], data[first + child + 1]):
            child += 1
        if not less(data[first + root], data[first + child]):
            return
        _swap(data, first + root, first + child)
        root = child


def _heap_sort(data, less, a, b):
    first, lo, hi = a, 0, b - a
    for i in range((hi - 1) // 2, -1, -1):
        _sift_down(data, less, i, hi, first)
    for i in range(hi - 1, -1, -1):
        _swap(data, first, first + i)
        _sift_down(data, less, lo, i, first)


def _median_of_three(data, less, m1, m0, m2):
    if _lt(data, less, m1, m0):
        _swap(data, m1, m0)
    if _lt(data, less, m2, m1):
        _swap(data, m2, m1)
        if _lt(data, less, m1, m0):
            _swap(data, m1, m0)


def _do_pivot(data, less, lo, hi):
    m = (lo + hi) >> 1
    if hi - lo > 40:
        s = (hi - lo) // 8
        _median_of_three(data, less, lo, lo + s, lo + 2 * s)
        _median_of_three(data, less, m, m - s, m + s)
        _median_of_three(data, less, hi - 1, hi - 1 - s, hi - 1 - 2 * s)
    _median_of_three(data, less, lo, m, hi - 1)

    pivot = lo
    a, c = lo + 1, hi - 1
    while a < c and _lt(data, less, a, pivot):
        a += 1
    b = a
    while True:
        while b < c and not _lt(data, less, pivot, b):
            b += 1
        while b < c and _lt(data, less, pivot, c - 1):
            c -= 1
        if b >= c:
            break
        _swap(data, b, c - 1)
        b += 1
        c -= 1
    protect = hi - c < 5
    if not protect and hi - c < (hi - lo) // 4:
        dups = 0
        if not _lt(data, less, pivot, hi - 1):
            _swap(data, c, hi - 1)
            c += 1
            dups += 1
        if not _lt(data, less, b - 1, pivot):
            b -= 1
            dups += 1
        if not _lt(data, less, m, pivot):
            _swap(data, m, b - 1)
            b -= 1
            dups += 1
        protect = dups > 1
    if protect:
        while True:
            while a < b and not _lt(data, less, b - 1, pivot):
                b -= 1
            while a < b and _lt(data, less, a, pivot):
                a += 1
            if a >= b:
                break
            _swap(data, a, b - 1)
            a += 1
            b -= 1
    _swap(data, pivot, b - 1)
    return b - 1, c


def _quick_sort(data, less, a, b, max_depth):
    while b - a > 12:
        if max_depth == 0:
            _heap_sort(data, less, a, b)
            return
        max_depth -= 1
        mlo, mhi = _do_pivot(data, less, a, b)
        if mlo - a < b - mhi:
            _quick_sort(data, less, a, mlo, max_depth)
            a = mhi
        else:
            _quick_sort(data, less, mhi, b, max_depth)
            b = mlo
    if b - a > 1:
        for i in range(a + 6, b):
            if _lt(data, less, i, i - 6):
                _swap(data, i, i - 6)
        _insertion_sort(data, less, a, b)
