"""Thin Faust agents: each loops over batches and calls the pure steps of stream.batching / outputs.

topics     topic names, Kafka connection options, creation of the topics the engine uses
tables     Faust table adapters: staged writes flushed with an explicit partition
engine     everything the agents share (topics, tables, registry, scorer, metrics, pipeline)
users      clicks + exposures + profiles → features, scoring, predictions, rankings, realised totals
promotions promotion events → registry entries with encoded vectors
effects    partial snapshots → merged CampaignEffect per promotion, underperformance alerts
timers     partial snapshots, drift reports and Triton-outage alerts on a clock
"""
