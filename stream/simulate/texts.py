"""Promotion copy built from phrase templates with latent themes.

A theme is what the copy *means* (urgency, exclusivity, free delivery, value, loyalty, or nothing in
particular). Each theme has many paraphrases so no single word gives it away, and themes are drawn
independently of the discount type, so only the meaning of the text tells a model which theme a promotion has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THEMES: tuple[str, ...] = ("urgency", "exclusivity", "free_shipping", "value", "loyalty", "plain")

_TITLES: dict[str, tuple[str, ...]] = {
    "urgency": ("Last chance", "Ends tonight", "Only 48 hours left", "Flash sale", "Hurry, almost gone"),
    "exclusivity": ("Members-only preview", "Private sale", "Invitation only", "VIP early access",
                    "Reserved for a select few"),
    "free_shipping": ("Delivered free", "No delivery charges", "Shipping is on us", "Free next-day delivery",
                      "We cover the postage"),
    "value": ("Stock up and save", "More for less", "Best value of the season", "Get more for your money",
              "Smart savings"),
    "loyalty": ("Thank you for staying with us", "A reward for your loyalty", "For our long-time customers",
                "Celebrating you", "Because you keep coming back"),
    "plain": ("New arrivals", "Seasonal offer", "Now in store", "Our latest selection", "Fresh picks"),
}  # fmt: skip

_SENTENCES: dict[str, tuple[str, ...]] = {
    "urgency": (
        "The clock is ticking: this offer disappears at midnight.",
        "Stock is limited and going fast, so don't wait.",
        "Once these are gone, they're gone for good.",
        "Act now, the countdown has already started.",
        "This deal won't come back, decide today.",
    ),
    "exclusivity": (
        "Only a handful of our customers received this invitation.",
        "Get in before everyone else with private early access.",
        "This collection is reserved for members and not shown publicly.",
        "You have been hand-picked for a preview of something special.",
        "Enjoy perks the general public will never see.",
    ),
    "free_shipping": (
        "Every order arrives at your door without a delivery fee.",
        "We pay for the courier, wherever you live.",
        "No minimum basket and no postage to pay, even to remote addresses.",
        "Your parcel travels to you at our expense.",
        "Forget shipping costs: delivery is included.",
    ),
    "value": (
        "Fill your basket and watch the savings add up.",
        "Buy more, pay less per item.",
        "It's the smartest way to stretch your budget this season.",
        "Bigger baskets earn bigger savings.",
        "Great prices on the things you buy every week.",
    ),
    "loyalty": (
        "After all these years together, this one is our way of saying thanks.",
        "Loyal customers like you make us who we are.",
        "You've been with us for a long time, and it shows in this reward.",
        "A small thank-you for every order you've trusted us with.",
        "Here's to many more years of shopping together.",
    ),
    "plain": (
        "Take a look at what's new this week.",
        "Browse the latest additions to our range.",
        "Discover products picked for the season.",
        "Our team has refreshed the selection.",
        "See what just landed in store.",
    ),
}


@dataclass(frozen=True)
class Copy:
    title: str
    description: str


def offer_phrase(discount_type: str, value: float) -> str:
    phrases = {
        "percent": f"{value:.0f}% off",
        "amount_off": f"${value:.0f} off every item",
        "bogo": "buy one, get one free",
        "free_shipping": "free shipping on every order",
        "bundle": f"{value:.0f}% off when you buy two or more",
    }
    return phrases[discount_type]


def write_copy(
    rng: np.random.Generator,
    themes: dict[str, float],
    discount_type: str,
    value: float,
    categories: list[str],
) -> Copy:
    """Title and description expressing `themes` (strongest first) for an offer on `categories`."""
    ordered = sorted(themes, key=lambda t: (-themes[t], THEMES.index(t)))
    primary = ordered[0]
    where = " and ".join(categories)
    offer = offer_phrase(discount_type, value)
    title = f"{_pick(rng, _TITLES[primary])}: {offer} on {where}"
    sentences = [_pick(rng, _SENTENCES[t]) for t in ordered]
    sentences.append(f"Enjoy {offer} across our {where} range.")
    if len(ordered) == 1 and rng.random() < 0.5:
        sentences.insert(1, _pick(rng, tuple(s for s in _SENTENCES[primary] if s not in sentences)))
    return Copy(title=title, description=" ".join(sentences))


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]
