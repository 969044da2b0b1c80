"""The dashboard's shared frame: the store handle, the cache keyed on the store's change counter,
the demo banner and small export helpers. Pages import this; nothing in disfer/ does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from disfer.store import Store, default_db_path


@st.cache_resource
def _store_for(path: str) -> Store:
    return Store(path)


def get_store() -> Store:
    """The store this app shows: $DISFER_DB or data/disfer.duckdb (session may override)."""
    path = st.session_state.get("db_path") or str(default_db_path())
    return _store_for(path)


@st.cache_data(show_spinner=False, max_entries=256)
def _cached_call(_fn: Callable, fn_key: str, db_path: str, counter: int, args: tuple, kwargs: tuple) -> Any:
    return _fn(Store(db_path), *args, **dict(kwargs))


def cached(fn: Callable, *args, **kwargs) -> Any:
    """fn(store, *args, **kwargs), computed once per change of the store (its change counter)."""
    store = get_store()
    counter = store.change_counter()
    return _cached_call(fn, f"{fn.__module__}.{fn.__qualname__}", str(store.path), counter,
                        args, tuple(sorted(kwargs.items())))
