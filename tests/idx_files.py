"""Write IDX files (the Fashion-MNIST format), for the dataset and notebook tests."""

from __future__ import annotations

import gzip
import struct

import numpy as np


def write_idx(path, array: np.ndarray) -> None:
    """An IDX file exactly as the data set ships it: 00 00 08 ndim, big-endian sizes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())
