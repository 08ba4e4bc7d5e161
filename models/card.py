"""The model card exported with each served version (data, formulation, metrics, version), from model.json."""

from __future__ import annotations

from typing import Any

from stream.scoring.signature import OUTCOMES

_METRICS = (
    ("qini", "Qini"),
    ("auuc", "AUUC"),
    ("uplift_at_10", "uplift@10%"),
    ("uplift_at_30", "uplift@30%"),
    ("auc_treated", "AUC treated"),
    ("auc_control", "AUC control"),
    ("calibration_treated", "calib. err. treated"),
    ("calibration_control", "calib. err. control"),
    ("pehe", "PEHE"),
    ("oracle_qini", "oracle Qini"),
    ("truth_qini", "Qini on true effects"),
    ("oracle_truth_qini", "oracle's, on true effects"),
)


def _num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _metrics_table(metrics: dict[str, dict[str, Any]]) -> list[str]:
    shown = [(key, label) for key, label in _METRICS if any(key in m for m in metrics.values())]
    lines = [
        "| outcome | " + " | ".join(label for _, label in shown) + " |",
        "|---|" + "---:|" * len(shown),
    ]
    for outcome in OUTCOMES:
        row = metrics.get(outcome, {})
        lines.append(f"| {outcome} | " + " | ".join(_num(row.get(key)) for key, _ in shown) + " |")
    return lines


def _data_table(data: dict[str, Any]) -> list[str]:
    lines = [
        "| split | rows | users | treated | holdout | " + " | ".join(f"mean {o}" for o in OUTCOMES) + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(OUTCOMES),
    ]
    for split in ("train", "val", "test"):
        part = data.get(split)
        if part:
            means = part.get("outcome_means", {})
            lines.append(
                f"| {split} | {part['rows']} | {part['users']} | {part['treated']} | {part['holdout']} | "
                + " | ".join(_num(means.get(o)) for o in OUTCOMES) + " |"
            )
    return lines


def _adaptation(hyper: dict[str, Any]) -> str:
    rank = hyper.get("lora_rank")
    if not rank:
        return "fully fine-tuned"
    targets = "/".join(hyper.get("lora_targets", []))
    return f"LoRA rank {rank}, alpha {_num(hyper.get('lora_alpha'))} on {targets}, merged for serving"


def _held_out(meta: dict[str, Any]) -> list[str]:
    """The shipped default model's held-out metrics (models/pretrained.py), when model.json has them."""
    default = meta.get("default_model")
    if not default:
        return []
    world = ", ".join(f"{k} {v}" for k, v in default["world"].items())
    held = default["held_out"]
    check = held["check"]
    check_world = ", ".join(f"{k} {v}" for k, v in check["world"].items())
    return [
        "## Held-out metrics (the shipped default model)",
        "",
        f"Built by `{default['command']}` ({_num(default.get('build_seconds'))} s): a simulated history of "
        f"its own world ({world}), training seed {default['train_seed']}, at most {default['epochs']} "
        "epochs.",
        "",
        f"Test users of that history ({held['test']['rows']} exposures; never used for weights or early "
        "stopping):",
        "",
        *_metrics_table(held["test"]["metrics"]),
        "",
        f"Check world ({check_world}: the same catalogue and promotions, newly drawn users, exposures and "
        f"outcomes; {check['rows']} exposures), which tests/models/test_default.py recomputes from these "
        "files:",
        "",
        *_metrics_table(check["metrics"]),
        "",
    ]


_UNSEEN_MODELS = ("neural", "attributes_only", "t_learner_gbm", "s_learner_gbm", "discount_value")
_CEILINGS = ("without_strength", "without_strength_or_text")


def _unseen(meta: dict[str, Any]) -> list[str]:
    """What the promotion text adds on unseen promotions (`models.pretrained unseen`), when recorded."""
    unseen = meta.get("default_model", {}).get("unseen_promotions")
    if not unseen:
        return []
    lines = [
        "## What the promotion text adds (unseen promotions)",
        "",
        f"Measured by `{unseen['command']}`: the attributes-only ablation (the same training without the "
        "text) and this model on the held-out promotions of other simulated worlds. Spearman between each "
        "promotion's mean predicted uplift and its true mean effect, next to the gradient-boosting "
        "baselines fitted on each world's other promotions, the discount depth alone, and the world's "
        "rank ceilings (models/ceiling.py: an oracle without the promotions' latent strength, and without "
        "their text too).",
        "",
        "| world | promotions | outcome | " + " | ".join((*_UNSEEN_MODELS, *_CEILINGS)) + " |",
        "|---|---:|---|" + "---:|" * (len(_UNSEEN_MODELS) + len(_CEILINGS)),
    ]
    for world in unseen["worlds"]:
        for outcome in OUTCOMES:
            values = [world["spearman"][outcome].get(m) for m in _UNSEEN_MODELS]
            values += [world["ceilings"][outcome][c] for c in _CEILINGS]
            where = f"| seed {world['seed']}, {world['users']} users | {world['held_out']} | {outcome} | "
            lines.append(where + " | ".join("–" if v is None else f"{v:+.2f}" for v in values) + " |")
    return [*lines, ""]


def render_card(meta: dict[str, Any], version: int | None) -> str:
    """Markdown card; `version` is the served version (None: a model directory not yet exported)."""
    data = meta.get("data", {})
    hyper = meta.get("hyper_parameters", {})
    training = meta.get("training", {})
    features = meta.get("features", {})
    lines = [
        "# liftstream uplift model — "
        + (f"served version {version}" if version is not None else "model directory (not yet exported)"),
        "",
        f"- training run: `{meta.get('version', '?')}`, created {meta.get('created_at', '?')}, "
        f"seed {meta.get('seed')}",
        f"- formulation: {meta.get('formulation', '?')}",
        f"- models: `promo_encoder` (all-MiniLM-L6-v2, {_adaptation(hyper)}, projected to a "
        f"{hyper.get('promo_dim', '?')}-dim promotion vector) and `effect_scorer` (MLP, hidden "
        f"{hyper.get('hidden', '?')}), TorchScript, served by Triton",
        f"- inputs: {len(features.get('user_features', []))} user features, "
        f"{len(features.get('promo_attrs', []))} promotion attributes, the promotion vector",
        "- outputs per arm (treated, control): P(visit), P(conversion), E[revenue]; "
        "uplift = treated − control",
        f"- training: best epoch {training.get('best_epoch', '?')} of {training.get('epochs_run', '?')} on "
        f"{training.get('device', '?')} in {_num(training.get('seconds'))} s; early stopping on "
        f"validation Qini ({hyper.get('select_outcome', '?')})",
        "",
        "## Data",
        "",
        f"Source: {data.get('source', '?')}; promotions: {', '.join(data.get('promotions', [])) or '?'}. "
        "Splits hold disjoint users.",
        "",
        *_data_table(data),
        "",
        "## Validation metrics",
        "",
        *_metrics_table(meta.get("validation_metrics", {})),
        "",
        *_held_out(meta),
        *_unseen(meta),
        "Held-out test metrics and the scikit-learn T-/S-learner baselines come from `liftstream evaluate`.",
        "",
        "## Use and limits",
        "",
        "Estimates the effect of showing a promotion to a user, for ranking and monitoring live campaigns. "
        "Effects are learned from treatment vs holdout exposures in the training history; populations or "
        "promotion types absent from it are extrapolation — watch the drift reports, measured against "
        "`reference.json`.",
        "",
    ]
    return "\n".join(lines)
