"""Promotion texts → vectors through Triton's `promo_encoder`, once per (promotion text, model version).

A vector is stored in the registry entry under the model version that produced it; the scorer of the
same version is the only one it means anything to. The missing vectors of a call are encoded in one
request, and concurrent callers needing the same vector wait for that request instead of sending their
own: the promotions agent encodes new texts before it publishes an entry, and scoring encodes what is
still missing (a model version rolled out, or a promotion stored while Triton was away).

A vector the encoder got wrong (NaN, ±inf, or an answer of another shape: stream/scoring/validate.py)
is never returned, so never stored: the promotion stays without a vector for that version, its
exposures are dead-lettered `invalid_score` by the batch that meets them, and the next batch asks again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from stream.registry.promos import Promo
from stream.registry.registry import Registry
from stream.scoring.protocol import Scorer
from stream.scoring.tokenize import load_tokenizer, tokenize
from stream.scoring.validate import invalid_vectors

log = logging.getLogger(__name__)

_Key = tuple[str, str, int]  # (promotion_id, text, model version)


class PromoTextEncoder:
    def __init__(self, scorer: Scorer) -> None:
        self._scorer = scorer
        self._tokenizer: Any = None
        self._inflight: dict[_Key, asyncio.Future[np.ndarray | None]] = {}

    def load(self) -> Any:
        """The tokenizer, loaded on first use. A worker calls this before it starts consuming rather than
        stall its event loop on the first promotion (transformers' imports are not thread-safe either)."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer()
        return self._tokenizer

    async def encode(self, texts: list[str], version: int) -> np.ndarray:
        """One encoder request for `texts`: float32 [len(texts), PROMO_DIM]."""
        ids, mask = tokenize(self.load(), texts)
        return await self._scorer.encode(ids, mask, version=version)

    async def with_vectors(self, promos: Sequence[Promo], version: int) -> list[Promo]:
        """`promos`, each with a vector for `version` (only the missing ones are encoded) unless the encoder
        answered an invalid one."""
        missing = {p.promotion_id: p for p in promos if version not in p.vectors}
        waiting = {
            pid: self._inflight[k] for pid, p in missing.items() if (k := _key(p, version)) in self._inflight
        }
        mine = [p for pid, p in missing.items() if pid not in waiting]
        vectors: dict[str, np.ndarray | None] = {}
        if mine:
            vectors.update(
                zip([p.promotion_id for p in mine], await self._encode(mine, version), strict=True)
            )
        for pid, future in waiting.items():
            vectors[pid] = await asyncio.shield(future)
        return [
            p if (vector := vectors.get(p.promotion_id)) is None else p.with_vector(version, vector)
            for p in promos
        ]

    async def _encode(self, promos: list[Promo], version: int) -> list[np.ndarray | None]:
        """One vector per promotion, None where the encoder's answer is invalid."""
        loop = asyncio.get_running_loop()
        futures = {_key(p, version): loop.create_future() for p in promos}
        self._inflight.update(futures)
        try:
            vectors = await self.encode([p.info.text for p in promos], version)
        except Exception as exc:
            for f in futures.values():
                f.set_exception(exc)
                f.exception()  # marked retrieved: a caller waiting on it gets the error and retries itself
            raise
        except BaseException:
            for f in futures.values():
                f.cancel()
            raise
        finally:
            for k in futures:
                self._inflight.pop(k, None)
        invalid = invalid_vectors(vectors, len(promos))
        valid = [None if i in invalid else vectors[i] for i in range(len(promos))]
        for vector, future in zip(valid, futures.values(), strict=True):
            future.set_result(vector)
        log.info("encoded %d promotion texts with model version %d", len(promos) - len(invalid), version)
        if invalid:
            i, why = next(iter(invalid.items()))
            log.warning(
                "promo_encoder v%d answered %d of %d promotion texts invalidly (%s: %s); their vectors are "
                "not stored", version, len(invalid), len(promos), promos[i].promotion_id, why,
            )
        return valid


async def registry_vectors(
    registry: Registry, encoder: PromoTextEncoder, promotion_ids: Iterable[str], version: int
) -> dict[str, Promo]:
    """The registry entries of `promotion_ids` (all known) with vectors for `version`; new ones are stored."""
    promos = []
    for pid in dict.fromkeys(promotion_ids):
        promo = registry.get(pid)
        if promo is None:
            raise KeyError(f"promotion {pid} is not in the registry")
        promos.append(promo)
    out = {}
    for before, after in zip(promos, await encoder.with_vectors(promos, version), strict=True):
        if after is not before:
            # Re-read: the entry may have changed (a stop) while the request was out.
            current = registry.get(after.promotion_id) or after
            if current.info.text == after.info.text and version not in current.vectors:
                registry.put(current.with_vector(version, after.vectors[version]))
        out[after.promotion_id] = after
    return out


def _key(promo: Promo, version: int) -> _Key:
    return promo.promotion_id, promo.info.text, version
