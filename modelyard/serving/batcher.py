"""Micro-batching: concurrent requests share forward passes.

The first waiting request opens a batch and takes every request already queued, up to
`max_batch_size` texts. It waits (up to `max_wait_ms`) for more only while other requests are
on their way: the server has begun reading them (`expect`) and they have not reached the queue
yet. So a lone caller never waits, and under load the requests that arrive during one forward
pass make the next batch.

A batch runs in one worker thread (torch uses the cores itself; two forward passes at once would
only fight over them), in passes of `chunk_for`'s size: its texts sorted by length, each pass
padded to its own longest. When it fails, its halves are run again, down to the one request that
fails alone: that request gets the error, the others their answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from modelyard.serving.model import LoadedModel

log = logging.getLogger("modelyard.serving")


# Texts per forward pass on a CPU when `serving.chunk_size` is not set: padding a batch's texts
# to the longest of 32 arrivals cost more than the passes saved (docs/development/benchmarks.md).
CPU_CHUNK = 8


def chunk_for(device: str, chunk_size: int | None, max_batch_size: int) -> int:
    """Texts per forward pass: `chunk_size` when set; else CPU_CHUNK on a CPU and the whole
    batch on a GPU, whose wide passes cost little more than narrow ones."""
    if chunk_size is not None:
        return chunk_size
    return max_batch_size if device.startswith("cuda") else min(CPU_CHUNK, max_batch_size)


class NoModel(RuntimeError):
    pass


class ModelFailed(RuntimeError):
    """The model raised on this request's texts (run on their own, without other requests)."""

    def __init__(self, message: str, model: LoadedModel) -> None:
        super().__init__(message)
        self.model = model  # the version that failed


@dataclass(frozen=True)
class Scored:
    model: LoadedModel
    probabilities: np.ndarray  # one row per text, columns in model.labels order


_Item = tuple[list[str], "asyncio.Future[Scored]"]


class MicroBatcher:
    def __init__(
        self,
        current: Callable[[], LoadedModel | None],
        max_batch_size: int,
        max_wait_ms: float,
        on_batch: Callable[[int], None] | None = None,
        executor: ThreadPoolExecutor | None = None,
        chunk_size: int | None = None,
    ) -> None:
        self._current = current
        self.max_batch_size, self.max_wait_s = max_batch_size, max_wait_ms / 1000
        self.chunk_size = chunk_size  # None: chunk_for decides by the model's device
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        # A canary's challenger has a batcher of its own on the champion's executor: one
        # forward pass at a time, whichever version it is for.
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="modelyard-infer")
        self._coming = 0  # requests being read that have not reached the queue yet
        self._changed = asyncio.Event()

    @property
    def waiting(self) -> int:
        """Requests queued for the next batch."""
        return self._queue.qsize()

    def expect(self) -> Callable[[], None]:
        """Say a request is on its way; call what this returns (once or more: the first counts)
        when it has been queued or has been answered without the model."""
        self._coming += 1
        done = False

        def arrived() -> None:
            nonlocal done
            if not done:
                done = True
                self._coming -= 1
                self._changed.set()

        return arrived

    async def score(self, texts: list[str], arrived: Callable[[], None] | None = None) -> Scored:
        future: asyncio.Future[Scored] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((texts, future))
        self._changed.set()
        if arrived is not None:
            arrived()
        return await future

    async def _gather(self) -> list[_Item]:
        loop = asyncio.get_running_loop()
        items = [await self._queue.get()]
        size = len(items[0][0])
        deadline = loop.time() + self.max_wait_s
        while size < self.max_batch_size:
            self._changed.clear()
            if not self._queue.empty():
                item = self._queue.get_nowait()
                items.append(item)
                size += len(item[0])
                continue
            remaining = deadline - loop.time()
            if self._coming <= 0 or remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                break
        return items

    async def run(self) -> None:
        while True:
            items = await self._gather()
            items = [(texts, future) for texts, future in items if not future.done()]
            if not items:
                continue
            model = self._current()  # once per batch: one version answers all of it
            if model is None:
                for _, future in items:
                    future.set_exception(NoModel("no model is loaded yet"))
                continue
            if self._on_batch:
                self._on_batch(sum(len(texts) for texts, _ in items))
            await self._answer(model, items)

    async def _answer(self, model: LoadedModel, items: list[_Item]) -> None:
        """Run `items` as one batch and answer each; on failure, each half on its own."""
        texts = [text for batch, _ in items for text in batch]
        try:
            probabilities = await self._forward(model, texts)
        except Exception as error:  # isolated below, then given to its request
            if len(items) > 1:
                middle = len(items) // 2
                await self._answer(model, items[:middle])
                await self._answer(model, items[middle:])
                return
            ((_, future),) = items
            log.exception("the model failed on a request of %d texts", len(texts))
            if not future.done():
                future.set_exception(ModelFailed(f"{type(error).__name__}: {error}", model))
            return
        start = 0
        for batch, future in items:
            if not future.done():  # the client may have gone away meanwhile
                future.set_result(Scored(model, probabilities[start : start + len(batch)]))
            start += len(batch)

    async def _forward(self, model: LoadedModel, texts: list[str]) -> np.ndarray:
        device = str(getattr(model.classifier, "device", "cpu"))
        chunk = chunk_for(device, self.chunk_size, self.max_batch_size)
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, model.classifier.predict_proba, texts, chunk
        )

    @property
    def executor(self) -> ThreadPoolExecutor:
        return self._executor

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
