"""Small synthetic data sets in MNIST's IDX format, made by the tests."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest


def _idx(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file (the format MNIST ships in)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_synthetic(dir: Path, train: int = 600, test: int = 100, side: int = 8, seed: int = 1) -> Path:
    """Images whose class is drawn as a brighter row band, so a network can learn them."""
    rng = np.random.default_rng(seed)
    dir.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", train), ("t10k", test)):
        labels = rng.integers(0, 10, size=count)
        images = rng.integers(0, 60, size=(count, side, side))
        for i, label in enumerate(labels):
            images[i, label % side, :] += 150
        (dir / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images)))
        (dir / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels)))
    return dir


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_synthetic(tmp_path / "synthetic")
