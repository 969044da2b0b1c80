"""Progress reporting shared by the CLI (a terminal bar) and the app (st.progress via a callback)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

# A callback the app passes in: fraction done in 0..1 and a short text.
ProgressFn = Callable[[float, str], None]

_QUIET = False


def set_quiet(quiet: bool) -> None:
    global _QUIET
    _QUIET = quiet


def bar(iterable: Iterable[T], total: int | None = None, desc: str = "",
        callback: ProgressFn | None = None, unit: str = "it") -> Iterator[T]:
    """Iterate with a tqdm bar on a terminal (quiet otherwise) and/or a callback."""
    from tqdm import tqdm

    disable = _QUIET or not sys.stderr.isatty()
    with tqdm(total=total, desc=desc, disable=disable, unit=unit, leave=False) as t:
        done = 0
        for item in iterable:
            yield item
            done += 1
            t.update(1)
            if callback is not None and total:
                callback(min(done / total, 1.0), desc)


class Progress:
    """Manual progress (for batched work where units are images, not iterations)."""

    def __init__(self, total: int, desc: str = "", callback: ProgressFn | None = None, unit: str = "it"):
        from tqdm import tqdm

        self.total = max(total, 1)
        self.done = 0
        self.desc = desc
        self.callback = callback
        self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False,
                         disable=_QUIET or not sys.stderr.isatty())

    def update(self, n: int) -> None:
        self.done += n
        self._bar.update(n)
        if self.callback is not None:
            self.callback(min(self.done / self.total, 1.0), self.desc)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
