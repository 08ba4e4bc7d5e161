"""A parsed view over the registry table: entries are decoded once per stored value, not per batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stream.registry.promos import Promo

Write = Callable[[str, dict[str, Any]], Any]


class Registry:
    def __init__(self, table: Mapping[str, Any], write: Write) -> None:
        """`table` maps promotion_id → stored JSON; `write` persists one (the agent's table adapter)."""
        self._table = table
        self._write = write
        self._cache: dict[str, tuple[Any, Promo]] = {}

    def get(self, promotion_id: str) -> Promo | None:
        raw = self._table.get(promotion_id)
        if raw is None:
            return None
        cached = self._cache.get(promotion_id)
        # The table replaces a value when a changelog update arrives, so identity tells staleness.
        if cached is not None and cached[0] is raw:
            return cached[1]
        promo = Promo.from_json(raw)
        self._cache[promotion_id] = (raw, promo)
        return promo

    def known(self, promotion_id: str) -> bool:
        return self._table.get(promotion_id) is not None

    def entries(self) -> list[Promo]:
        """Every promotion, active or stopped, by promotion_id."""
        promos = (self.get(pid) for pid in list(self._table.keys()))
        return sorted((p for p in promos if p is not None), key=lambda p: p.promotion_id)

    def active(self) -> list[Promo]:
        return [p for p in self.entries() if p.active]

    def put(self, promo: Promo) -> Any:
        """Stores an entry; returns what `write` returns (the changelog delivery future)."""
        raw = promo.to_json()
        self._cache[promo.promotion_id] = (raw, promo)
        return self._write(promo.promotion_id, raw)
