"""PennyLane devices shipped by qstore_pl and the adapters the router drives."""
