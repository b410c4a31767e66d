"""Small modules any layer of qstore_pl may use: where files go (:mod:`paths`),
files written whole (:mod:`atomic_file`), bounds on input (:mod:`limits`), secrets
(:mod:`secret`), thread settings (:mod:`threads`) and progress bars (:mod:`progress`).

Each is light (no PennyLane, no framework) and imports nothing above
:mod:`qstore_pl.exceptions`."""
