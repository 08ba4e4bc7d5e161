"""`liftstream doctor`: checks a deployment's Kafka, topics, ACLs and Triton, one line each."""
