"""Shared fixtures: tiny images on disk, the shared real data sets, offline mode."""

import os
from pathlib import Path

# Tests never reach the network: make Hugging Face downloads fail at once instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from ._vector import register as register_vector_modality  # noqa: E402

register_vector_modality()


@pytest.fixture(autouse=True)
def _metadata_routing_off():
    """Importing skada (tests/test_adaptation.py, at collection) turns scikit-learn's
    metadata routing on for the whole process: every test starts from the default,
    off, and the tests that need it on say so."""
    with sklearn.config_context(enable_metadata_routing=False):
        yield


DATA_DIR = Path(os.environ.get("SKTRANSFER_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _require(path):
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set SKTRANSFER_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def hymenoptera():
    return _require(DATA_DIR / "hymenoptera_data")


@pytest.fixture(scope="session")
def sst2():
    return _require(DATA_DIR / "sst2")


def random_images(n, size=(40, 48), seed=0):
    """``n`` random uint8 RGB arrays of shape ``size + (3,)``."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, *size, 3), dtype=np.uint8)


@pytest.fixture
def image_files(tmp_path):
    """Six small PNG files and their pixel arrays."""
    arrays = random_images(6)
    paths = []
    for i, array in enumerate(arrays):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(array).save(path)
        paths.append(str(path))
    return paths, arrays


def out_of_memory_above(limit, sizes):
    """A forward pre-hook that records batch sizes and fails like a full GPU above ``limit``."""

    def hook(module, args):
        sizes.append(args[0].shape[0])
        if args[0].shape[0] > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    return hook


@pytest.fixture
def fresh_accelerate():
    """Accelerate keeps one state per process: each test that uses it starts and ends without one."""
    accelerate = pytest.importorskip("accelerate")
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield accelerate
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
