"""Routing: workload features, backend descriptions (capabilities, time models,
prices) and the policies that choose a backend from them, without device objects."""
