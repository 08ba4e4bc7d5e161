"""The micro-batch path between Kafka and Triton, as pure steps the agents call in order.

records  consumed messages as plain values, decoded through the gate (invalid → dead letters)
contract a user event on its user's partition, its event time not ahead of its message: else a dead letter
users    the per-user table value (features, attribution, profile, applied offsets) and its updates
partials per-(promotion, partition) realised/predicted totals with the offsets they account for
assemble one batch of user events → state updates, exposures to score, rankings to compute
pending  exposures of promotions the registry does not know yet, held for a bounded time
acks     which consumed messages may be acknowledged: in offset order, once their outputs are out
request  the scorer's input matrices for a batch (exposures and ranking candidates together)
scoring  one Triton request per batch, retried while Triton is away, split to isolate poison rows
"""
