"""The plain-Python baseline: the hand-written lower bound of BENCHMARKS.md.

It must stay this lean. The blackboard is a list of dicts plus a queue of
new entries; a source is a ``(precondition, action)`` pair, both plain
Python callables on an entry dict; a loop pops a new entry, calls every
source whose precondition accepts it, and appends what the action returns
(a dict, or None). No rule engine, no DuckDB, no objects beyond dicts.

W4 alone needs tasks, since its point is waiting: :func:`arun` runs async
actions as anyio tasks, at most ``limit`` at once behind a semaphore.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio

Entry = dict[str, Any]
Source = tuple[Callable[[Entry], bool], Callable[[Entry], Entry | None]]
AsyncSource = tuple[Callable[[Entry], bool], Callable[[Entry], Awaitable[Entry | None]]]


def run(sources: list[Source], initial: Iterable[Entry]) -> tuple[list[Entry], int]:
    """Run to quiescence; returns the blackboard and the number of activations."""
    board: list[Entry] = list(initial)
    queue = deque(board)
    activations = 0
    while queue:
        entry = queue.popleft()
        for accepts, action in sources:
            if accepts(entry):
                activations += 1
                out = action(entry)
                if out is not None:
                    board.append(out)
                    queue.append(out)
    return board, activations


async def arun(sources: list[AsyncSource], initial: Iterable[Entry], limit: int) -> tuple[list[Entry], int]:
    """The async form for W4: each accepted entry starts a task; ``limit`` run at once.

    The queue is drained as soon as entries arrive: a finished task appends
    its result and matches it at once, so no loop has to poll for new work.
    """
    board: list[Entry] = []
    queue: deque[Entry] = deque(initial)
    semaphore = anyio.Semaphore(limit)
    activations = 0

    async def call(action: Callable[[Entry], Awaitable[Entry | None]], entry: Entry) -> None:
        async with semaphore:
            out = await action(entry)
        if out is not None:
            queue.append(out)
            drain()

    def drain() -> None:
        nonlocal activations
        while queue:
            entry = queue.popleft()
            board.append(entry)
            for accepts, action in sources:
                if accepts(entry):
                    activations += 1
                    tg.start_soon(call, action, entry)

    async with anyio.create_task_group() as tg:
        drain()
    return board, activations
