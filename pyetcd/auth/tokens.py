"""Simple tokens, as etcd 3.5's `--auth-token simple` provider.

A token is 16 random ASCII letters, a dot and the raft index of the Authenticate entry that
assigned it. Every member applies that entry, so every member knows every token. A token lives
`--auth-token-ttl` seconds (default 300) after its last use; etcd's keeper resets the deadline
on each use and drops the token when it passes. Tokens live in memory only: a restart forgets
them, as etcd does.
"""
from __future__ import annotations

import secrets
import string
import time

_LETTERS = string.ascii_letters
PREFIX_LEN = 16


class SimpleTokens:
    def __init__(self, ttl: float, now=time.monotonic) -> None:
        self.ttl = ttl
        self.now = now
        self.enabled = False
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (user name, deadline)
        self._sweep_at = 1024

    @staticmethod
    def gen_prefix() -> str:
        return "".join(secrets.choice(_LETTERS) for _ in range(PREFIX_LEN))

    @staticmethod
    def index_of(token: str) -> int | None:
        """The raft index a well-formed token names, or None (etcd: not a valid simple token)."""
        parts = token.split(".")
        if len(parts) != 2 or not parts[1].isdigit():
            return None
        return int(parts[1])

    def enable(self) -> None:
        self.enabled = True

    def disable(self) -> None:
        self.enabled = False
        self._tokens.clear()

    def assign(self, prefix: str, index: int, user: str) -> str:
        token = f"{prefix}.{index}"
        if self.enabled:
            now = self.now()
            if len(self._tokens) >= self._sweep_at:  # drop expired tokens nobody used again
                self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
                self._sweep_at = max(1024, 2 * len(self._tokens))
            self._tokens[token] = (user, now + self.ttl)
        return token

    def user_of(self, token: str) -> str | None:
        """The user a live token belongs to; using it resets its time to live."""
        got = self._tokens.get(token)
        if got is None:
            return None
        user, deadline = got
        now = self.now()
        if now >= deadline:
            del self._tokens[token]
            return None
        self._tokens[token] = (user, now + self.ttl)
        return user

    def invalidate_user(self, user: str) -> None:
        for t in [t for t, (u, _) in self._tokens.items() if u == user]:
            del self._tokens[t]
