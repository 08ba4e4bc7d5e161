"""The promotion registry: every promotion's latest definition, active flag and encoded text vectors.

promos       a registry entry and the pure rule that applies a promotion event to it
registry     a parsed, cached view over the registry table (a Faust GlobalTable: every worker holds all)
eligibility  which active promotions a user may be ranked against
encoder      promotion texts → vectors through Triton's promo_encoder, once per (promotion text, version)
"""
