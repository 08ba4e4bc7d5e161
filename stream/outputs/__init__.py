"""What the engine publishes, as pure builders of wire events from scored batches.

Each builder returns `Output`s (logical topic, key, value bytes); the agents send them in one batch and
wait for every acknowledgement before the inputs that produced them are acknowledged.

predictions  an EffectPrediction per scored exposure
rankings     top-k eligible active promotions per user starting a session
partials     cumulative per-(promotion, partition) totals → merged CampaignEffect per promotion
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Output:
    topic: str
    """Logical topic (a key of `OUTPUT_EVENTS`, or `campaign-partials`)."""
    key: bytes | None
    value: bytes
