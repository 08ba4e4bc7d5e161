"""Cost of the per-event state update on one core: `assemble` over a simulated world's user events.

The events are the simulator's live-mode messages (profiles, then clicks and exposures in arrival order,
a few late or out of order) decoded into the pydantic models `assemble` dispatches on, placed on
partitions as Kafka's default partitioner places their keys, and cut into batches as the users agent
takes them. User values and partials carry over from batch to batch, as the tables hold them, so the
state grows to its steady size and later batches pay for it. Only the `assemble` calls are timed, in CPU
time, so that other processes on the machine count less; the best of `--repeat` runs is reported.

    uv run python -m stream.batching.bench_state [--users 3000] [--days 2] [--batch 1000]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from stream.batching.assemble import Assembly, assemble
from stream.batching.contract import user_partition
from stream.batching.partials import Partial
from stream.batching.records import Record
from stream.batching.users import EMPTY, UserConfig, UserValue
from stream.batching.working import assemble_working
from stream.events.gate import Event
from stream.events.models import INPUT_EVENTS
from stream.simulate.config import SimConfig
from stream.simulate.live import live_messages

PARTITIONS = 4
CONFIG = UserConfig()
_NOW = datetime(2026, 3, 2, tzinfo=UTC)
Assembler = Callable[..., Assembly]
IMPLEMENTATIONS: dict[str, Assembler] = {"reference": assemble, "working": assemble_working}


@dataclass(frozen=True)
class StateBench:
    implementation: str
    events: int
    batches: int
    users: int
    seconds: float

    @property
    def micros_per_event(self) -> float:
        return 1e6 * self.seconds / self.events


def user_events(users: int, days: float, seed: int = 0) -> list[tuple[Record, Event]]:
    """The world's user events with the records Kafka would give them (offsets per topic partition)."""
    out: list[tuple[Record, Event]] = []
    next_offset: dict[tuple[str, int], int] = {}
    for m in live_messages(SimConfig(seed=seed, users=users, days=days), _NOW):
        if m.topic == "promotions":
            continue
        partition = user_partition(m.key.decode(), PARTITIONS)
        offset = next_offset.get((m.topic, partition), 0)
        next_offset[m.topic, partition] = offset + 1
        record = Record(m.topic, partition, offset, m.key, m.value, m.ts_ms / 1000)
        out.append((record, INPUT_EVENTS[m.topic].model_validate_json(m.value, strict=True)))  # type: ignore[arg-type]
    return out


def measure(
    implementation: str, events: Sequence[tuple[Record, Event]], batch: int, config: UserConfig = CONFIG
) -> StateBench:
    run = IMPLEMENTATIONS[implementation]
    users: dict[str, UserValue] = {}
    partials: dict[str, Partial] = {}
    seconds = 0.0
    for i in range(0, len(events), batch):
        started = time.process_time()
        asm = run(events[i : i + batch], lambda u: users.get(u, EMPTY), partials.get, config)
        seconds += time.process_time() - started
        users.update((uid, value) for uid, (_, value) in asm.users.items())
        partials.update(asm.partials)
    return StateBench(implementation, len(events), -(-len(events) // batch), len(users), seconds)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--days", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5, help="runs per implementation; the best one counts")
    args = parser.parse_args(argv)
    events = user_events(args.users, args.days)
    # The decoded input is the previous stage's: out of the collector's view, its objects do not make
    # each full collection of this stage's garbage traverse them too.
    gc.collect()
    gc.freeze()
    try:
        for name in IMPLEMENTATIONS:
            runs = [measure(name, events, args.batch) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r.seconds)
            print(
                f"{name:>9}: {best.micros_per_event:6.2f} µs/event "
                f"({best.events} events, {best.batches} batches of {args.batch}, {best.users} users)"
            )
    finally:
        gc.unfreeze()


if __name__ == "__main__":
    main()
