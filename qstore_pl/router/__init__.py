"""Routing: policies, workload features, configuration, prices, the spending ledger, time models."""
