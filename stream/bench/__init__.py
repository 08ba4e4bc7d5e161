"""`liftstream bench`: liftstream against raw aiokafka and a hand-rolled Faust agent, and Triton alone.

workload      the simulated backlog and its live continuation, as message bytes
kafka_io      per-run topics, preloading, paced live sends, clean-up
raw           the aiokafka pass-through ceiling (in this process)
naive_app     the hand-rolled Faust agent (its own worker process); naive runs and times it
worker        the engine worker as a contender: settings, environment, /metrics
liftstream    the engine end to end: throughput, memory, then latency (latency)
profile       py-spy sampling of the worker and its summary
stats         the pure arithmetic and the result's JSON shape; report prints the tables
run           the side-by-side run; triton_bench the --triton-only grid; random_model an untrained model
"""
