"""Group commit: concurrent requests hand rows to one writer task that inserts them in batches."""

from __future__ import annotations

import asyncio
import contextlib

from barrage_table import BarrageRow, ResultTable

_Item = tuple[BarrageRow, "asyncio.Future[None]"]


class BatchWriter:
    """`write(row)` returns once the row is committed (or raises if the batch failed).

    No timer: while one batch is being written, the next requests queue up, and the writer takes all
    of them at once. Under load batches grow by themselves; alone, a row is written at once.
    """

    def __init__(self, table: ResultTable, max_batch: int = 500) -> None:
        self._table = table
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.rows = 0

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="barrage-batch-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def write(self, row: BarrageRow) -> None:
        if self._task is None or self._task.done():
            raise RuntimeError("batch writer is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((row, future))
        await future

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            await self._write(batch)
            if stopping:
                return

    async def _write(self, batch: list[_Item]) -> None:
        try:
            await self._table.insert_many([row for row, _ in batch])
        except Exception as exc:  # every waiter gets the error and answers 5xx, so the event is retried
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.batches += 1
        self.rows += len(batch)
        for _, future in batch:
            if not future.done():  # a waiter whose client went away was cancelled
                future.set_result(None)
