from __future__ import annotations

import numpy as np
import pytest

from stream.bench.triton_bench import Cell, encoder_batches, encoder_rows, int_list, scorer_rows
from stream.errors import ConfigError
from stream.scoring import signature as sig
from stream.scoring.protocol import encoder_inputs, scorer_inputs

pytestmark = pytest.mark.unit


def test_int_lists_are_parsed_or_rejected_with_the_option_name() -> None:
    assert int_list("1,64, 512,4096", "--batch-sizes") == (1, 64, 512, 4096)
    for bad in ("", "1,x", "0,4", "-1"):
        with pytest.raises(ConfigError, match="--concurrency"):
            int_list(bad, "--concurrency")


def test_encoder_batches_are_capped_at_its_max_batch() -> None:
    assert encoder_batches((1, 64, 512, 4096)) == (1, sig.ENCODER_MAX_BATCH)


def test_generated_rows_match_the_model_signature() -> None:
    rng = np.random.default_rng(0)
    scorer_inputs(*scorer_rows(rng, 7))  # raises on a wrong shape or dtype
    ids, mask = encoder_rows(rng, 5)
    encoder_inputs(ids, mask)
    lengths = mask.sum(axis=1)
    assert ((lengths >= 16) & (lengths <= sig.MAX_TOKENS)).all()
    assert (ids[:, 0] == 101).all() and (ids[np.arange(5), lengths - 1] == 102).all()


def test_cell_rate_and_json() -> None:
    cell = Cell("effect_scorer", 512, 4, 100, 51_200, 2.0, 5.0, 9.0)
    assert cell.rows_per_s == 25_600.0
    assert cell.to_json()["rows_per_s"] == 25_600.0
