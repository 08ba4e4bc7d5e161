"""The rank ceilings of a simulated world's promotions (models/ceiling.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from models import ceiling
from stream.scoring.signature import OUTCOMES
from stream.simulate.config import SimConfig

pytestmark = pytest.mark.unit
WORLD = SimConfig(seed=1, users=400, campaigns=3)


def test_every_outcome_gets_each_reference() -> None:
    out = ceiling.ceilings(WORLD)
    assert set(out) == set(OUTCOMES)
    for by_reference in out.values():
        assert set(by_reference) == {"without_strength", "without_strength_or_text", "discount_value"}
        assert all(-1.0 <= v <= 1.0 for v in by_reference.values())


def test_the_ceilings_cover_the_promotions_asked_for() -> None:
    full = ceiling.ceilings(WORLD)
    assert ceiling.ceilings(WORLD, only={f"promo1-{c}-{k}" for c in range(3) for k in range(4)}) == full
    two = ceiling.ceilings(WORLD, only={"promo1-0-0", "promo1-1-1"})
    assert all(abs(v) == pytest.approx(1.0) for by_ref in two.values() for v in by_ref.values())


def test_a_world_whose_promotions_all_have_the_mean_strength_is_ranked_perfectly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the latent strength separates the oracle from the truth: without it the ranking is exact."""
    made = ceiling.make_promotions

    def mean_strength(*args: object) -> tuple:
        return tuple(replace(p, scale=ceiling.MEAN_STRENGTH) if p.role == "regular" else p
                     for p in made(*args))  # type: ignore[arg-type]

    monkeypatch.setattr(ceiling, "make_promotions", mean_strength)
    out = ceiling.ceilings(WORLD)
    assert [out[o]["without_strength"] for o in OUTCOMES] == pytest.approx([1.0] * len(OUTCOMES))
    assert np.isfinite(out["visit"]["without_strength_or_text"])


def test_cli_prints_one_line_per_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    ceiling.main(["--seed", "1", "--users", "300", "--campaigns", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("world seed 1: 8 promotions") and len(lines) == 1 + len(OUTCOMES)
    with pytest.raises(SystemExit, match="error: users must be"):
        ceiling.main(["--seed", "1", "--users", "0"])
