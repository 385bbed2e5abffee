"""Compiled Cython modules built from native/*.pyx."""
