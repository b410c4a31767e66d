"""The router's preprocessing: what it does to circuits before it routes them."""
