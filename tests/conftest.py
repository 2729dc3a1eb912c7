"""Shared test settings.

Prepared datasets go to one temporary folder per test process (``GENJAX_DATA_DIR``), so the
suite never reads or writes a user's ``~/tensorflow_datasets`` and needs no network: the only
dataset it prepares is the embedded 8x8 digits.
"""

import atexit
import os
import shutil
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

# One persistent compilation cache for the whole run, shared by the xdist workers (they inherit
# the controller's environment, so the first process to get here picks the folder): many tests
# build the same small models, and a program compiled once is then loaded, not recompiled
# (measured: tests/test_loop_async.py 115 s -> 76 s in one process from an empty cache). The
# cache is keyed by the program, the compile options and the jax/XLA versions, so a hit is the
# same executable. A user's own JAX_COMPILATION_CACHE_DIR is kept.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    if "GENJAX_TEST_JAX_CACHE" not in os.environ:
        os.environ["GENJAX_TEST_JAX_CACHE"] = tempfile.mkdtemp(prefix="genjax-test-jax-cache-")
        atexit.register(shutil.rmtree, os.environ["GENJAX_TEST_JAX_CACHE"], ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ["GENJAX_TEST_JAX_CACHE"]
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

# The suite's programs are tiny and most of its time went to compiling them (LLVM's optimization
# passes). Unless GENJAX_TEST_OPTIMIZE=1, XLA's backend compiles without them: the same HLO
# program (partitioning, fusion, collectives and cost analysis are HLO passes, unchanged), only
# less optimized machine code; the whole suite passes both ways. Measured on the 2-core CPU
# machine: tests/test_precision_vae_gan.py + tests/test_translation.py 147 s -> 77 s.
# Subprocesses that tests start inherit the setting through the environment.
if os.environ.get("GENJAX_TEST_OPTIMIZE", "0") != "1":
    os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"

import jax  # noqa: E402 - after the environment above

# On GPUs and TPUs JAX's default float32 matmul/convolution precision is reduced (TF32, one
# bfloat16 pass); the tolerances of this suite are float32 ones, so it asks for true float32
# everywhere and means the same on every backend (no effect on CPU). bfloat16 tests use bfloat16
# inputs, which this setting does not change.
jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture(scope="session")
def data_dir() -> str:
    return os.environ["GENJAX_DATA_DIR"]
