"""Run by `make run` before the dashboard starts: a hosted dashboard without a working sign-in is
refused in one line, and a missing or empty store gets the demo study.

A store that already holds stimuli is left exactly as it is. No connection stays open after this
process ends, so the dashboard can open the store at once.
"""

from __future__ import annotations

import sys
from pathlib import Path

from disfer.errors import DisferError
from disfer.store import Store, default_db_path


def has_stimuli(path: Path) -> bool:
    """Whether the store at `path` exists and holds at least one stimulus."""
    if not path.exists():
        return False
    with Store(path).read() as con:
        return con.execute("SELECT count(*) FROM stimuli").fetchall()[0][0] > 0


def ensure_store(path: Path | None = None, seed: int = 0, out=print) -> bool:
    """Build the demo at `path` (default $DISFER_DB or data/disfer.duckdb) unless it has stimuli.

    Returns True when the demo was built.
    """
    from disfer.demo import build_demo

    path = Path(path) if path is not None else default_db_path()
    if has_stimuli(path):
        out(f"opening the store {path} as it is")
        return False
    existed = path.exists()
    store = Store(path)
    n_sources = 0
    if existed:   # a missing store is not created here: the demo appears there whole, or not at all
        with store.read() as con:
            n_sources = con.execute("SELECT count(*) FROM sources").fetchall()[0][0]
    if n_sources:
        # Faces but no study yet: the user's own data, half-way; building a demo into it would mix the two.
        out(f"{path} holds {n_sources:,} faces but no stimuli yet; run `disfer build` to make the study "
            f"(the dashboard opens it as it is)")
        return False
    out(f"{path} is {'empty' if existed else 'missing'}: building the demo study "
        f"(synthetic faces and a simulated crowd; no download)")
    build_demo(store, seed=seed, log=lambda line: out(f"  {line}"))
    return True


def hosted_problem(secrets_file: Path = Path(".streamlit") / "secrets.toml") -> str | None:
    """Why a hosted dashboard cannot start (sign-in not configured), or None."""
    import os
    import tomllib

    from disfer.hosted import hosted_config

    try:
        secrets = tomllib.loads(secrets_file.read_text()) if secrets_file.is_file() else {}
    except (OSError, tomllib.TOMLDecodeError) as err:
        return f"{secrets_file}: cannot be read ({err})"
    return hosted_config(secrets, os.environ).problem


def main() -> int:
    problem = hosted_problem()
    if problem:
        print(f"disfer: error: {problem}", file=sys.stderr)
        return 2
    try:
        ensure_store()
    except DisferError as err:
        print(f"disfer: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
