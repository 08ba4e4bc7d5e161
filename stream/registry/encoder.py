"""Promotion texts → vectors through Triton's `promo_encoder`, once per (promotion text, model version).

A vector is stored in the registry entry under the model version that produced it; the scorer of the
same version is the only one it means anything to. The missing vectors of a batch are encoded in one
request, and concurrent batches needing the same vector wait for that one request instead of sending
their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from stream.registry.promos import Promo
from stream.registry.registry import Registry
from stream.scoring.protocol import Scorer
from stream.scoring.tokenize import load_tokenizer, tokenize

log = logging.getLogger(__name__)

_Key = tuple[str, str, int]  # (promotion_id, text, model version)


class PromoTextEncoder:
    def __init__(self, scorer: Scorer, registry: Registry) -> None:
        self._scorer = scorer
        self._registry = registry
        self._tokenizer: Any = None
        self._loading = asyncio.Lock()
        self._inflight: dict[_Key, asyncio.Future[np.ndarray]] = {}

    async def encode(self, texts: list[str], version: int) -> np.ndarray:
        """One encoder request for `texts`: float32 [len(texts), PROMO_DIM]."""
        async with self._loading:
            # One loader: importing transformers from two threads at once breaks its lazy imports.
            if self._tokenizer is None:
                self._tokenizer = await asyncio.to_thread(load_tokenizer)
        ids, mask = tokenize(self._tokenizer, texts)
        return await self._scorer.encode(ids, mask, version=version)

    async def vectors(self, promotion_ids: Iterable[str], version: int) -> dict[str, Promo]:
        """The registry entries of `promotion_ids` (all known), each with a vector for `version`."""
        promos: dict[str, Promo] = {}
        for pid in dict.fromkeys(promotion_ids):
            promo = self._registry.get(pid)
            if promo is None:
                raise KeyError(f"promotion {pid} is not in the registry")
            promos[pid] = promo
        missing = [p for p in promos.values() if version not in p.vectors]
        waiting = {p.promotion_id: self._inflight[k] for p in missing if (k := _key(p, version)) in self._inflight}
        mine = [p for p in missing if p.promotion_id not in waiting]
        if mine:
            await self._encode_and_store(mine, version)
        for pid, future in waiting.items():
            promos[pid] = promos[pid].with_vector(version, await asyncio.shield(future))
        for p in mine:
            promos[p.promotion_id] = self._registry.get(p.promotion_id) or p
        return promos

    async def _encode_and_store(self, promos: list[Promo], version: int) -> None:
        loop = asyncio.get_running_loop()
        futures = {_key(p, version): loop.create_future() for p in promos}
        self._inflight.update(futures)
        try:
            vectors = await self.encode([p.info.text for p in promos], version)
        except Exception as exc:
            for f in futures.values():
                f.set_exception(exc)
                f.exception()  # marked retrieved: a batch waiting on it gets the error and retries itself
            raise
        except BaseException:
            for f in futures.values():
                f.cancel()
            raise
        finally:
            for k in futures:
                self._inflight.pop(k, None)
        for promo, vector, future in zip(promos, vectors, futures.values(), strict=True):
            # Re-read: the entry may have changed (a stop) while the request was out.
            current = self._registry.get(promo.promotion_id) or promo
            if current.info.text == promo.info.text:
                self._registry.put(current.with_vector(version, vector))
            future.set_result(vector)
        log.info("encoded %d promotion texts with model version %d", len(promos), version)


def _key(promo: Promo, version: int) -> _Key:
    return promo.promotion_id, promo.info.text, version
