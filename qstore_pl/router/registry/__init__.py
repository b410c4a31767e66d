"""The backends the router knows how to build: local simulators and IonQ, each
turned from a config entry into a :class:`~qstore_pl.router.routing.spec.BackendSpec`."""
