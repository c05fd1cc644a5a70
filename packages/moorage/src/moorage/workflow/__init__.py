"""The workflow layer: tasks, flows, transactions, cache policies and the run context."""
