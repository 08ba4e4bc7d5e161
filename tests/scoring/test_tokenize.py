from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from stream.scoring.signature import MAX_TOKENS
from stream.scoring.tokenize import load_tokenizer, tokenize

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return load_tokenizer()


def test_tokens_are_int64_padded_to_max_tokens(tokenizer: Any) -> None:
    ids, mask = tokenize(tokenizer, ["20% off running shoes", "Free shipping"])
    assert ids.shape == mask.shape == (2, MAX_TOKENS)
    assert ids.dtype == mask.dtype == np.int64
    assert mask[0].sum() > mask[1].sum() > 2  # [CLS] text [SEP], then padding
    assert (ids[mask == 0] == tokenizer.pad_token_id).all()
    assert ids[0, 0] == tokenizer.cls_token_id


def test_long_texts_are_truncated_and_end_with_sep(tokenizer: Any) -> None:
    ids, mask = tokenize(tokenizer, ["sale " * 500])
    assert mask.sum() == MAX_TOKENS
    assert ids[0, -1] == tokenizer.sep_token_id


def test_no_texts_give_empty_arrays(tokenizer: Any) -> None:
    ids, mask = tokenize(tokenizer, [])
    assert ids.shape == mask.shape == (0, MAX_TOKENS)
    assert ids.dtype == np.int64
