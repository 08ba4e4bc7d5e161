"""Watching live campaigns: the `liftstream monitor` terminal view and the Grafana dashboard's queries."""
