"""A synthetic e-commerce world whose promotion effects are known, as a history directory or live to Kafka.

config (what a world is made of) → world (users, catalogue) → campaigns and texts (promotions with themed
copy) → effects (the ground truth) → exposures (who sees what, in which arm) → sessions (background traffic
and outcomes) → assemble (wire events) → history_mode / live; replay sends any history directory to Kafka.
"""
