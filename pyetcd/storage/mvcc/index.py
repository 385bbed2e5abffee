"""The key index used by the store: the compiled one when built, else the plain Python one.

Both implement the same API (see index_py.TreeIndex); tests run against both.
"""
from __future__ import annotations

from pyetcd.storage.mvcc import index_py

try:
    from pyetcd._native import mvcc_index as _native
except ImportError:  # not built: plain Python
    _native = None

PyTreeIndex = index_py.TreeIndex
NativeTreeIndex = _native.TreeIndex if _native is not None else None
TreeIndex = NativeTreeIndex or PyTreeIndex
NATIVE = _native is not None
