"""Shared test settings.

Prepared datasets go to one temporary folder per test process (``GENJAX_DATA_DIR``), so the
suite never reads or writes a user's ``~/tensorflow_datasets`` and needs no network: the only
dataset it prepares is the embedded 8x8 digits.
"""

import os
import tempfile

import pytest

# One folder per process: under pytest-xdist (the README's ``-n 2``) the workers inherit the
# controller's environment, and two workers preparing digits in one folder would race.
_DATA_DIR = tempfile.mkdtemp(prefix="genjax-test-data-")
os.environ["GENJAX_DATA_DIR"] = _DATA_DIR
os.environ.setdefault("TFDS_DISABLE_GCS", "1")
# The README runs the suite in two processes (pytest -n 2): on a GPU each takes memory as needed
# instead of preallocating most of it.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402 - after the environment above

# On GPUs and TPUs JAX's default float32 matmul/convolution precision is reduced (TF32, one
# bfloat16 pass); the tolerances of this suite are float32 ones, so it asks for true float32
# everywhere and means the same on every backend (no effect on CPU). bfloat16 tests use bfloat16
# inputs, which this setting does not change.
jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture(scope="session")
def data_dir() -> str:
    return os.environ["GENJAX_DATA_DIR"]
