"""Circuit transforms qstore_pl adds to PennyLane's (QNode in, QNode out)."""
