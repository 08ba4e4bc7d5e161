"""Realised effects of promotions, from exposures and the clicks and purchases that follow them.

attribution  per-user state (a Faust table value): which open exposures a click is an outcome of, as Deltas
aggregate    PromotionTotals per (promotion, source partition): cumulative counts per arm, mergeable
report       CampaignEffect from merged totals: realised uplift with its interval, predicted uplift, status
"""
