"""Keeping the network busy: the next item read in a thread, the previous one written in another.

A chunk's images go through read -> normalize -> network -> instances -> write. The network
(TensorFlow or OpenVINO, backends.py) and most NumPy and image-codec work release the GIL, so
reading and normalizing image k + 1 (`read_ahead`) and writing image k - 1 (`WriteBehind`)
while the network predicts image k fill the moments its threads leave a core idle. Both hold
at most `depth` items beyond the one being predicted, so memory stays that of a few images.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def read_ahead(read: Callable[[Item], Result], items: Iterable[Item],
               depth: int = 1) -> Iterator[tuple[Item, Result]]:
    """(item, read(item)) in order, read(item) already running for the next `depth` items.

    An exception of read(item) is raised when that item's turn comes, as in a plain loop.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as reader:
        pending: deque[tuple[Item, Future]] = deque()
        for item in items:
            pending.append((item, reader.submit(read, item)))
            if len(pending) > depth:
                item, future = pending.popleft()
                yield item, future.result()
        while pending:
            item, future = pending.popleft()
            yield item, future.result()


class WriteBehind:
    """Runs submitted calls one after the other in a thread of their own, in order.

    submit() waits while `depth` calls are still pending; leaving the `with` block waits for
    all of them. An exception of a call is raised in the caller's thread, at a later submit or
    on leaving the block; leaving it on an exception cancels the calls not yet started.
    """

    def __init__(self, depth: int = 2):
        self.depth = depth
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="write-behind")
        self._pending: deque[Future] = deque()

    def submit(self, write: Callable, *args) -> None:
        while len(self._pending) >= self.depth:
            self._pending.popleft().result()
        self._pending.append(self._writer.submit(write, *args))

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                while self._pending:
                    self._pending.popleft().result()
        finally:
            for future in self._pending:
                future.cancel()
            self._writer.shutdown(wait=True)
