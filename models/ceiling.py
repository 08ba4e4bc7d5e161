"""What any model could reach on a simulated world's unseen promotions: rank ceilings from the simulator.

    uv run python -m models.ceiling --seed 1 --users 40000 [--campaigns 6 --promotions-per-campaign 4]

A promotion's true effect depends on its attributes, on the themes of its copy and on a latent strength
(`Promotion.scale`, drawn uniformly in [0.5, 1.2] for regular promotions) that neither its text nor its
attributes show. The per-promotion Spearman of `liftstream evaluate --split promotion` is therefore bounded
by an oracle that knows every user and every other promotion property exactly but not the strength. This
module computes, per outcome, the Spearman between each promotion's true mean effect (over all the world's
users, exposed at the promotion's start) and:
- without_strength: the same oracle with each regular promotion's strength replaced by its mean (the
  strong and dud promotions keep theirs: their copy and offer are fixed, so a model can recognise them);
- without_strength_or_text: also with the copy's themes replaced by the world's average theme mix, the
  best an attributes-only model can do;
- discount_value: the promotion's discount depth alone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection
from dataclasses import replace

import numpy as np

from models.promotion_split import spearman
from stream.errors import ConfigError
from stream.scoring.signature import OUTCOMES
from stream.simulate.campaigns import make_promotions
from stream.simulate.clock import Clock
from stream.simulate.config import SimConfig, stage_rng
from stream.simulate.effects import Variants, make_variants, true_effects
from stream.simulate.world import make_catalogue, make_users

MEAN_STRENGTH = 0.85  # the mean of a regular promotion's uniform(0.5, 1.2) strength


def ceilings(config: SimConfig, only: Collection[str] | None = None) -> dict[str, dict[str, float]]:
    """outcome -> reference -> Spearman against the promotions' true mean effects (module docstring), over
    the promotions whose ids are in `only` (default: all)."""
    clock = Clock(config.start)
    world_rng = stage_rng(config.seed, "world")
    catalogue = make_catalogue(world_rng)
    users = make_users(world_rng, config.users, config.seed)
    promotions = make_promotions(stage_rng(config.seed, "promotions"), config, catalogue)
    variants = make_variants(promotions, catalogue)
    first = np.array([int(np.flatnonzero(variants.promotion == i)[0]) for i in range(len(promotions))])
    starts = np.array([p.start_ms for p in promotions])

    def mean_effects(v: Variants) -> np.ndarray:
        """[promotions, outcomes] true mean effect of each promotion's first copy over all users."""
        n = len(users)
        rows = []
        for row, start in zip(first, starts, strict=True):
            truth = true_effects(users, v, clock, config.window_ms, np.arange(n), np.full(n, row),
                                 np.full(n, start))
            rows.append([float(tau.mean()) for tau in truth.tau])
        return np.array(rows)

    regular = np.array([p.role == "regular" for p in promotions])[variants.promotion]
    strength_free = replace(variants, scale=np.where(regular, MEAN_STRENGTH, variants.scale))
    average_copy = np.broadcast_to(variants.themes[first].mean(axis=0), variants.themes.shape)
    attributes_only = replace(strength_free, themes=np.where(regular[:, None], average_copy, variants.themes))
    kept = np.array([only is None or p.promotion_id in only for p in promotions])
    true, references = mean_effects(variants), {
        "without_strength": mean_effects(strength_free),
        "without_strength_or_text": mean_effects(attributes_only),
        "discount_value": np.repeat(variants.depth[first][:, None], len(OUTCOMES), axis=1),
    }
    return {outcome: {name: spearman(ref[kept, o], true[kept, o]) for name, ref in references.items()}
            for o, outcome in enumerate(OUTCOMES)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m models.ceiling", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True, help="the simulated world's seed")
    parser.add_argument("--users", type=int, default=40_000)
    parser.add_argument("--campaigns", type=int, default=SimConfig.campaigns)
    parser.add_argument("--promotions-per-campaign", type=int, default=SimConfig.promotions_per_campaign)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = SimConfig(seed=args.seed, users=args.users, campaigns=args.campaigns,
                           promotions_per_campaign=args.promotions_per_campaign)
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from exc
    print(f"world seed {config.seed}: {config.n_promotions} promotions, {config.users} users")
    for outcome, by_reference in ceilings(config).items():
        print(f"{outcome:<11}" + "  ".join(f"{name} {value:+.3f}" for name, value in by_reference.items()))


if __name__ == "__main__":
    main()
