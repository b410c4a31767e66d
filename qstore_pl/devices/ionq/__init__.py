"""IonQ through pennylane-ionq: the device and its job client, the native-gate
compiler, IonQ's public price lists, and the offline API emulator
(``qstore-pl ionq-emulator``) with the simulator behind it. The router's view of IonQ
(capabilities, time model, queue status) is in :mod:`qstore_pl.router.registry`."""
