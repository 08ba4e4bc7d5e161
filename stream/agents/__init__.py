"""Thin Faust agents: each loops over batches and calls the pure steps of stream.batching / outputs.

topics     topic names, and the topic policy applied to the cluster (create, then verify)
topic_policy  the policy's pure rules: what each topic must look like, one line per problem found
tables     Faust table adapters: staged writes flushed with an explicit partition
engine     everything the agents share (topics, tables, registry, scorer, metrics, pipeline)
users      clicks + exposures + profiles → features, scoring, predictions, rankings, realised totals
promotions promotion events → registry entries with encoded vectors
effects    partial snapshots → merged CampaignEffect per promotion, underperformance alerts
timers     partial snapshots, drift reports and Triton-outage alerts on a clock
health     the heartbeat and readiness behind /live and /ready (stream/health.py)
"""
