"""IonQ backends through pennylane-ionq: the device, its spec for the router, and
backend status (queue times)."""
