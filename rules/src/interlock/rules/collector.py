"""The cyclic garbage collector paused while a bulk of objects is built or judged.

Loading 12,000 rules, or judging a million windows, allocates hundreds of thousands of
objects that outlive the moment, none of them in a reference cycle. Every few hundred
allocations the collector walks the young objects, and as they pile up into the older
generations, every object: half of the time it takes to load 12,000 stored rules, a
third of judging a million windows. Reference counting still frees what is dropped; the
collector runs again afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector inside (nested uses leave it to the outermost)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
