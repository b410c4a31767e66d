"""Calibration: :mod:`~qstore_pl.router.calibration.measure` times the local backends
on the router's own workloads, :mod:`~qstore_pl.router.calibration.fit` fits their
time models to the timings and keeps them per machine."""

from qstore_pl._moved import moved_attributes

# this path was the fit module until 0.2: its names still answer here, with a warning
__getattr__ = moved_attributes(
    __name__,
    dict.fromkeys(
        (
            "AMPLITUDE_MIN_WIRES",
            "CALIBRATION_ENV",
            "CALIBRATION_MODES",
            "MAX_REJECTED_SHARE",
            "OUTLIER_FACTOR",
            "POOR_FIT",
            "Calibration",
            "FitCheck",
            "Sample",
            "calibration_mode",
            "calibration_path",
            "engine_digest",
            "fit_and_check",
            "fit_time_model",
            "machine_fingerprint",
        ),
        "qstore_pl.router.calibration.fit",
    ),
)
