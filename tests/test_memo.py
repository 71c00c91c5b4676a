"""The one memo of necreg/speed: values kept per name and key while the watch sees no change."""

from __future__ import annotations

import os

from necreg.speed.memo import Memo


class Watch:
    """A stand-in for the change watch: its token is whatever the test says."""

    value: object = 1

    def token(self):
        return self.value


def test_values_are_kept_per_key_while_the_token_holds():
    watch, made = Watch(), []
    memo = Memo(watch)

    def get(key):
        return memo.get("list", key, lambda: made.append(key) or key.upper(), size=2)

    assert get("a") == "A"
    assert get("a") == "A"
    get("b")
    get("a")  # used last: kept
    get("c")  # one too many: "b" goes
    get("a")
    get("b")
    assert made == ["a", "b", "c", "b"]
    watch.value = 2  # the database changed
    get("a")
    watch.value = None  # the watch cannot tell
    get("a")
    get("a")
    assert made == ["a", "b", "c", "b", "a", "a", "a"]


def test_without_a_watch_every_call_builds():
    memo, made = Memo(None), []
    for _ in range(2):
        memo.get("x", None, lambda: made.append(1))
    assert made == [1, 1]
    assert memo.peek("x") is None


def test_names_do_not_share_keys():
    memo = Memo(Watch())
    assert memo.get("one", "k", lambda: 1) == 1
    assert memo.get("two", "k", lambda: 2) == 2
    assert memo.get("one", "k", lambda: 3) == 1


def test_a_value_kept_by_key_holds_whatever_the_watch_says():
    watch, made = Watch(), []
    memo = Memo(watch)

    def get(key):
        return memo.get("page", key, lambda: made.append(key) or key, watched=False)

    get("snapshot-1")
    watch.value = None
    get("snapshot-1")
    assert made == ["snapshot-1"]
    get("snapshot-2")  # a new key replaces the old (size 1)
    get("snapshot-1")
    assert made == ["snapshot-1", "snapshot-2", "snapshot-1"]
    assert Memo(None).get("page", "k", lambda: "v", watched=False) == "v"


def test_peek_answers_only_while_nothing_changed():
    watch = Watch()
    memo = Memo(watch)
    memo.get("answer", None, lambda: "kept")
    assert memo.peek("answer") == "kept"
    assert memo.peek("other") is None
    watch.value = 2
    assert memo.peek("answer") is None


def test_the_token_is_taken_before_building():
    """A change made while a value is built is seen at the next call, never hidden."""
    watch = Watch()
    memo = Memo(watch)

    def build():
        watch.value = 2  # another worker commits meanwhile
        return "made from the state of token 1 (or older)"

    memo.get("x", None, build)
    assert memo.get("x", None, lambda: "again") == "again"


def test_a_forked_worker_starts_empty(monkeypatch):
    memo = Memo(Watch())
    memo.get("x", None, lambda: "parent's")
    monkeypatch.setattr(os, "getpid", lambda: -1)
    assert memo.peek("x") is None
    assert memo.get("x", None, lambda: "child's") == "child's"
