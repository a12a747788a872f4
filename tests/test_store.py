"""The store's strategy state: stable parts are written only when they change, and read back whole."""

from __future__ import annotations

import pytest

from archsearch.store import Store

STABLE = ("packed",)


def _part_writes(store: Store) -> list[str]:
    return [name for (name,) in store.db.execute("SELECT name FROM strategy_parts ORDER BY name")]


def test_strategy_state_round_trips_and_skips_unchanged_parts(tmp_path) -> None:
    store = Store(tmp_path)
    big = {"weights": "x" * 1000}
    with store.transaction() as db:
        store.put_state(db, {"rng": 1, "packed": big, "gen": {"s": 1}}, {"elapsed": 1.0}, STABLE)
    assert store.strategy_state() == {"rng": 1, "packed": big, "gen": {"s": 1}}
    # the same object is not written again: change the stored row behind the store's back to prove it
    store.db.execute("UPDATE strategy_parts SET value = '{\"weights\": \"old\"}' WHERE name = 'packed'")
    with store.transaction() as db:
        store.put_state(db, {"rng": 2, "packed": big, "gen": {"s": 2}}, {"elapsed": 2.0}, STABLE)
    assert store.strategy_state()["packed"] == {"weights": "old"}
    assert store.strategy_state()["gen"] == {"s": 2} and store.strategy_state()["rng"] == 2
    # a new object is written; a part that disappears is deleted
    with store.transaction() as db:
        store.put_state(db, {"rng": 3, "packed": {"weights": "new"}}, {"elapsed": 3.0}, STABLE)
    assert store.strategy_state() == {"rng": 3, "packed": {"weights": "new"}}
    assert _part_writes(store) == ["packed"]
    store.close()
    # a fresh store instance (a resume) rewrites everything on its first save
    store = Store(tmp_path)
    assert store.strategy_state() == {"rng": 3, "packed": {"weights": "new"}}
    store.close()


def test_a_rolled_back_save_is_written_again(tmp_path) -> None:
    store = Store(tmp_path)
    part = {"w": 1}
    with pytest.raises(RuntimeError), store.transaction() as db:
        store.put_state(db, {"packed": part}, {}, STABLE)
        raise RuntimeError("trial failed to record")
    assert store.strategy_state() is None
    with store.transaction() as db:
        store.put_state(db, {"packed": part}, {}, STABLE)
    assert store.strategy_state() == {"packed": {"w": 1}}
    store.close()
