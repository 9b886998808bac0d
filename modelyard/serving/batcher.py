"""Micro-batching: concurrent requests share one forward pass.

The first waiting request opens a batch; others join it until `max_batch_size` texts are waiting
or `max_wait_ms` has passed. The batch runs in one worker thread (torch uses the cores itself;
two forward passes at once would only fight over them) under `torch.inference_mode()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from modelyard.serving.model import LoadedModel


class NoModel(RuntimeError):
    pass


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
    ) -> None:
        self._current = current
        self.max_batch_size, self.max_wait_s = max_batch_size, max_wait_ms / 1000
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="modelyard-infer")

    async def score(self, texts: list[str]) -> Scored:
        future: asyncio.Future[Scored] = asyncio.get_running_loop().create_future()
        await self._queue.put((texts, future))
        return await future

    async def _gather(self) -> list[_Item]:
        loop = asyncio.get_running_loop()
        items = [await self._queue.get()]
        size = len(items[0][0])
        deadline = loop.time() + self.max_wait_s
        while size < self.max_batch_size:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            items.append(item)
            size += len(item[0])
        return items

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
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
            texts = [text for batch, _ in items for text in batch]
            if self._on_batch:
                self._on_batch(len(texts))
            try:
                probabilities = await loop.run_in_executor(
                    self._executor, model.classifier.predict_proba, texts, self.max_batch_size
                )
            except Exception as error:  # noqa: BLE001 - every waiting request gets the error
                for _, future in items:
                    if not future.done():
                        future.set_exception(error)
                continue
            start = 0
            for batch, future in items:
                if not future.done():  # the client may have gone away meanwhile
                    future.set_result(Scored(model, probabilities[start : start + len(batch)]))
                start += len(batch)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
