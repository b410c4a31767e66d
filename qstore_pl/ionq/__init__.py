"""IonQ specifics that need no device: the native-gate compiler and the offline API
emulator (``qstore-pl ionq-emulator``)."""
