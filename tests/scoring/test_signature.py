"""The served model's recorded signature against the process's declaration: the worker's start-up check."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from stream.errors import ModelError
from stream.scoring import signature as sig

pytestmark = pytest.mark.unit


def _version(repo: Path, record: dict[str, object] | None, version: int = 3) -> Path:
    directory = repo / sig.SCORER / str(version)
    directory.mkdir(parents=True)
    if record is not None:
        (directory / sig.SIGNATURE_FILE).write_text(json.dumps(record))
    return directory


def test_a_model_of_this_declaration_is_served(tmp_path: Path) -> None:
    _version(tmp_path, sig.signature_record())
    sig.check_served(tmp_path, 3)


def test_a_model_exported_before_signatures_has_the_default_declaration(tmp_path: Path) -> None:
    _version(tmp_path, None)
    sig.check_served(tmp_path, 3)


def test_another_declaration_is_refused_in_one_line(tmp_path: Path) -> None:
    features = [*sig.USER_FEATURES[:-2], "profile_tier_gold", "hour_sin", "hour_cos"]
    other = {**sig.signature_record(), "declaration_hash": "0123456789abcdef", "user_features": features}
    _version(tmp_path, other)
    with pytest.raises(ModelError) as caught:
        sig.check_served(tmp_path, 3)
    message = str(caught.value)
    assert "\n" not in message
    assert (
        "served model version 3 was trained on profile declaration 0123456789abcdef (42 user features)"
        in message
    )
    assert f"this process declares {sig.DECLARATION_HASH} (41)" in message


def test_same_hash_other_features_is_refused(tmp_path: Path) -> None:
    _version(tmp_path, {**sig.signature_record(), "user_features": ["x"]})
    with pytest.raises(ModelError, match="1 user features"):
        sig.check_served(tmp_path, 3)


def test_unreadable_signature_is_a_model_error(tmp_path: Path) -> None:
    (_version(tmp_path, None) / sig.SIGNATURE_FILE).write_text("{not json")
    with pytest.raises(ModelError, match="is not a model signature"):
        sig.check_served(tmp_path, 3)


def test_a_repository_out_of_sight_is_checked_by_the_served_input_width(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Triton's JSON model config (int64 dims come as strings): the width must be the declaration's."""
    def config(width: int) -> dict:
        return {"input": [{"name": "user_features", "data_type": "TYPE_FP32", "dims": [str(width)]}]}

    with caplog.at_level(logging.WARNING, logger=sig.__name__):
        sig.check_served(tmp_path, 7)
        sig.check_served(tmp_path, 7, config(len(sig.USER_FEATURES)))
    assert "cannot check the signature of model version 7" in caplog.text
    with pytest.raises(ModelError, match=f"takes 32 user features, the declared profile attributes give "
                       f"{len(sig.USER_FEATURES)}"):
        sig.check_served(tmp_path, 7, config(32))
