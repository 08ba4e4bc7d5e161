"""Poison against the real Kafka and Triton: scores that are NaN, a model that fails some requests, events
on the wrong partition or from the future. Each becomes a dead letter; the rest is predicted, the worker
keeps running (one start) and commits up to the log end.

The test serves its own Triton (CPU twin) from a copy of the session's repository whose effect_scorer
wraps the real model: rows of the promotion with discount value 77 come back NaN, and a request holding
a row of the promotion with discount value 66 fails (the python backend answers it with an error).
"""

from __future__ import annotations

import asyncio
import base64
import math
import subprocess
import textwrap
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from stream.agents.topics import ensure_topics, topic_names
from stream.batching.contract import WRONG_PARTITION, partition_for
from stream.batching.scoring import INVALID_SCORE, SCORING_FAILED
from stream.events import gate
from stream.local.triton import TritonEndpoints, free_ports, temporary_triton
from stream.scoring import signature as sig
from stream.settings import Settings
from tests.stream.test_outages import Tail, copy_repo, started_once, with_backend
from tests.stream.workers import (
    consumed,
    engine_settings,
    metric,
    report,
    start_worker,
    stop_worker,
    wait_for_members,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

NAN_DISCOUNT, FAIL_DISCOUNT, GOOD_DISCOUNT = 77.0, 66.0, 10.0
USERS = 40
POISON = textwrap.dedent(f"""

    _Twin = TritonPythonModel
    _COLUMN = {sig.PROMO_ATTRS.index("discount_value_log")}
    _NAN, _FAIL = np.float32(np.log1p({NAN_DISCOUNT})), np.float32(np.log1p({FAIL_DISCOUNT}))


    class TritonPythonModel(_Twin):
        \"\"\"The twin, poisoned: NaN for the rows of one promotion, an error for requests with another.\"\"\"

        def execute(self, requests):
            import triton_python_backend_utils as pb_utils

            per_request = [
                [pb_utils.get_input_tensor_by_name(r, name).as_numpy() for name in self.input_names]
                for r in requests
            ]
            batched, sizes = concat_requests(per_request)
            outputs = split_outputs(run_module(self.module, batched), sizes)
            responses = []
            for inputs, outs in zip(per_request, outputs):
                marker = inputs[self.input_names.index("promo_attrs")][:, _COLUMN]
                if np.isclose(marker, _FAIL).any():
                    error = pb_utils.TritonError("poisoned request")
                    responses.append(pb_utils.InferenceResponse(output_tensors=[], error=error))
                    continue
                nan = np.isclose(marker, _NAN)[:, None]
                outs = [np.where(nan, np.float32(np.nan), out).astype(np.float32) for out in outs]
                tensors = [pb_utils.Tensor(n, out) for n, out in zip(self.output_names, outs)]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            return responses
""")


@pytest.fixture
def poisoned_triton(test_settings: Settings, served_model: Path, tmp_path: Path) -> Iterator[TritonEndpoints]:
    repo = copy_repo(test_settings.model_repo, tmp_path / "repo")
    for model_py in (repo / sig.SCORER).glob("*/model.py"):
        model_py.write_text(model_py.read_text() + POISON)
    with temporary_triton(repo, cpu=True, home=tmp_path / "triton") as endpoints:
        yield endpoints


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _promotion(pid: str, discount: float, ts: str) -> bytes:
    return orjson.dumps({
        "promotion_id": pid, "campaign_id": "poison", "action": "start", "ts": ts, "title": f"{pid} offer",
        "description": f"{discount:g} off", "discount_type": "amount_off", "discount_value": discount,
    })  # fmt: skip


def _exposure(user: str, pid: str, arm: str, ts: str) -> bytes:
    return orjson.dumps({
        "event_id": f"{user}-{pid}", "user_id": user, "promotion_id": pid, "campaign_id": "poison",
        "ts": ts, "arm": arm,
    })  # fmt: skip


def _click(user: str, event_id: str, ts: str) -> bytes:
    return orjson.dumps({
        "event_id": event_id, "user_id": user, "session_id": f"s-{event_id}", "ts": ts, "kind": "view",
    })  # fmt: skip


def test_poison_scores_failing_rows_wrong_partitions_and_future_events_become_dead_letters(
    test_settings: Settings, poisoned_triton: TritonEndpoints, kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = engine_settings(
        with_backend(test_settings, triton_url=poisoned_triton.grpc), prefix, tmp_path / "run"
    )
    (port,) = free_ports(1)
    log = tmp_path / "worker.log"
    # The default lateness (10 min): the test's own events are all current, and the future one is 23 h ahead.
    proc = start_worker(settings, log, metrics_port=port, LIFTSTREAM_WINDOWS__ALLOWED_LATENESS_S="600")
    try:
        figures = asyncio.run(_poison(settings, proc, port))
        assert started_once(log)
    except AssertionError as exc:
        raise report(exc, [log, tmp_path / "triton" / "triton.log"]) from exc
    finally:
        stop_worker(proc)
    print(f"poison: {figures}")


async def _poison(settings: Settings, proc: subprocess.Popen[bytes], port: int) -> dict[str, Any]:
    def alive() -> bool:
        return proc.poll() is None

    await wait_for_members(settings, 1, timeout_s=180, alive=alive)
    await ensure_topics(settings)
    names = topic_names(settings)
    n = settings.topics.partitions
    now = datetime.now(UTC)
    ts = _ts(now - timedelta(seconds=5))
    promos = {"good": GOOD_DISCOUNT, "nan": NAN_DISCOUNT, "fail": FAIL_DISCOUNT}
    users = [f"pu{i}" for i in range(USERS)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for pid, discount in promos.items():
            await producer.send_and_wait(names["promotions"], _promotion(pid, discount, ts), key=pid.encode())
        await asyncio.sleep(3.0)  # registered and encoded first, so every exposure is scored at once
        # Interleaved, so poisoned rows share their batches with good ones; a click per user asks for a
        # ranking over all three promotions.
        futures = []
        for i, user in enumerate(users):
            arm = "treatment" if i % 2 else "holdout"
            click = _click(user, f"c-{user}", ts)
            futures.append(await producer.send(names["clicks"], click, key=user.encode()))
            for pid in promos:
                futures.append(
                    await producer.send(names["exposures"], _exposure(user, pid, arm, ts), key=user.encode())
                )
        # A user's exposure on another partition than its key's, and a click 23 h ahead (then a real one).
        wrong = (partition_for(b"pw", n) + 1) % n
        futures.append(await producer.send(
            names["exposures"], _exposure("pw", "good", "treatment", ts), key=b"pw", partition=wrong
        ))  # fmt: skip
        ahead = _ts(now + timedelta(hours=23))
        futures.append(await producer.send(names["clicks"], _click("pf", "c-ahead", ahead), key=b"pf"))
        futures.append(await producer.send(names["clicks"], _click("pf", "c-now", ts), key=b"pf"))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()

    expected = {
        **{f"{u}-nan": INVALID_SCORE for u in users},
        **{f"{u}-fail": SCORING_FAILED for u in users},
        "pw-good": WRONG_PARTITION,
        "c-ahead": gate.FUTURE_TIMESTAMP,
    }
    good = {f"{u}-good" for u in users}
    async with Tail(settings, "predictions", "dead-letter", "promotion-rankings", "campaign-effects") as out:

        def dead() -> dict[str, dict[str, Any]]:
            letters = out.seen["dead-letter"]
            return {orjson.loads(base64.b64decode(d["payload_b64"]))["event_id"]: d for d in letters}

        await out.until(lambda: good <= out.predicted() and set(expected) <= set(dead()), 240, alive)
        await consumed(settings, ("clicks", "exposures"), timeout_s=120)
        letters = dead()
        assert {e: letters[e]["reason"] for e in expected} == expected
        assert out.predicted() == good  # nothing poisoned was predicted, every good exposure was
        for event_id in expected:
            d = letters[event_id]
            topic = "clicks" if event_id.startswith("c-") else "exposures"
            assert d["source_topic"] == names[topic] and d["offset"] >= 0, d
        assert letters["pw-good"]["partition"] == wrong
        assert not any(math.isnan(p["visit"]["p_treated"]) for p in out.seen["predictions"])
        rankings = out.seen["promotion-rankings"]
        ranked = Counter(r["promotion_id"] for ranking in rankings for r in ranking["ranked"])
        assert set(ranked) == {"good"}, ranked  # poisoned candidates are left out of the rankings

        # Dead-lettered exposures were still exposed: the realised counts hold all of them, the predictions
        # only the scored ones.
        def effects() -> dict[str, dict[str, Any]]:
            return {e["promotion_id"]: e for e in out.seen["campaign-effects"]}

        def exposed(effect: dict[str, Any] | None) -> int:
            return 0 if effect is None else effect["exposures_treatment"] + effect["exposures_holdout"]

        await out.until(lambda: all(exposed(effects().get(p)) == USERS for p in promos), 60, alive)
        latest = effects()
        assert latest["good"]["predicted_uplift_ci"]  # from the scored exposures
        assert not latest["nan"]["predicted_uplift_ci"] and not latest["fail"]["predicted_uplift_ci"]
    assert metric(port, "liftstream_events_in_total", topic="clicks", outcome="late") == 0.0
    assert metric(port, "liftstream_dead_letters_total", topic="exposures", reason=INVALID_SCORE) == USERS
    assert metric(port, "liftstream_dead_letters_total", topic="exposures", reason=SCORING_FAILED) == USERS
    assert metric(port, "liftstream_dead_letters_total", topic="exposures", reason=WRONG_PARTITION) == 1
    assert metric(port, "liftstream_dead_letters_total", topic="clicks", reason=gate.FUTURE_TIMESTAMP) == 1
    return {"predicted": len(good), "dead_letters": Counter(expected.values()), "rankings": ranked}
