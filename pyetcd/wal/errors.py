"""Errors raised by the WAL and the snapshotter (leaf module: imports nothing of ours)."""


class WALError(Exception):
    """A WAL or snapshot file cannot be used as asked (exists already, missing, locked, misuse)."""


class WALCorruptError(WALError):
    """The log holds data that fails verification somewhere other than a torn tail.

    Never repaired automatically: records after the damage were durable once, so cutting the log
    there could drop acknowledged writes. The message names the file and the byte offset.
    """
