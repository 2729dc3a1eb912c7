"""The host CPU as N JAX devices: process set-up done before JAX is imported.

XLA:CPU runs one device's convolutions and matrix products on a thread pool over all cores,
and on a 2-core x86 CPU it uses the second core poorly for convolutional steps: PixelCNN's
jitted step (binarized MNIST, batch 64, jax 0.10.2, 2-core AMD EPYC) took 2631 ms on one core
and 1720 ms on two (1.53x), where PyTorch's took 2.05x less on two. Split into N host devices,
each with single-threaded kernels (``--xla_force_host_platform_device_count=N
--xla_cpu_multi_thread_eigen=false``), the same step runs data-parallel through genjax's mesh:
N shares of the batch side by side, 1360-1487 ms against 1568-1969 ms as one device in the same
rounds. The numbers are those of one device up to round-off (the gradient is a mean over the
devices), and batch statistics are synchronised over the devices as on any mesh.

XLA reads its flags once, when JAX's CPU backend starts, so :func:`split_host_cpu` must run
before anything imports ``jax`` (``genjax --cpu-devices N`` and ``benchmarks/run.py
--cpu-devices N`` call it first); in a process that already imported JAX it only checks that the
split is in place, and otherwise says to start a new process. It also sets ``JAX_PLATFORMS=cpu``:
the split is a way to train on the CPU, and on a machine with an accelerator JAX would otherwise
use the accelerator and leave the host devices idle.

This module imports no other genjax module, and JAX only to check a process that already loaded
it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"
SINGLE_THREAD_FLAG = "--xla_cpu_multi_thread_eigen=false"


def xla_flags(n: int) -> str:
    """The XLA flags that make the host CPU ``n`` devices with single-threaded kernels."""
    return f"{DEVICE_COUNT_FLAG}={n} {SINGLE_THREAD_FLAG}"


def check_count(n: object, name: str = "--cpu-devices") -> int:
    """``n`` as an int >= 2; one line saying what to give otherwise."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"{name} must be an integer >= 2 (the host CPU as that many devices; "
                         f"leave it out for one device), got {n!r}")
    return n


def _count_in(flags: str) -> int | None:
    found = re.findall(rf"{DEVICE_COUNT_FLAG}=(\S*)", flags)
    if not found:
        return None
    try:
        return int(found[-1])
    except ValueError:
        return -1


def split_environment(n: int, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to set so that a JAX started with ``environ`` sees ``n`` host devices.

    ``XLA_FLAGS`` gets :func:`xla_flags` appended (flags already there are kept, and an equal
    device count is not repeated); ``JAX_PLATFORMS`` becomes ``cpu``.

    Raises:
      ValueError: ``n`` is not an integer >= 2; ``XLA_FLAGS`` already asks for another device
        count; or ``JAX_PLATFORMS`` names another platform.
    """
    check_count(n)
    flags = environ.get("XLA_FLAGS", "").strip()
    count = _count_in(flags)
    if count is not None and count != n:
        raise ValueError(f"--cpu-devices {n}: XLA_FLAGS already holds {DEVICE_COUNT_FLAG}="
                         f"{count}; remove it from XLA_FLAGS or give --cpu-devices {count}")
    platforms = environ.get("JAX_PLATFORMS", "").strip()
    if platforms and platforms.lower() != "cpu":
        raise ValueError(f"--cpu-devices {n} runs on the host CPU, but JAX_PLATFORMS="
                         f"{platforms!r} asks for another platform; unset JAX_PLATFORMS (or set "
                         "it to cpu), or leave out --cpu-devices to use the accelerator")
    words = flags.split()
    if count is None:
        words.append(f"{DEVICE_COUNT_FLAG}={n}")
    if SINGLE_THREAD_FLAG not in words:
        words.append(SINGLE_THREAD_FLAG)
    return {"XLA_FLAGS": " ".join(words), "JAX_PLATFORMS": "cpu"}


def split_host_cpu(n: int) -> None:
    """Makes JAX see this host's CPU as ``n`` devices with single-threaded kernels.

    Before JAX is imported: sets the variables of :func:`split_environment` in ``os.environ``.
    After: checks that JAX's backend is the CPU with ``n`` devices (a no-op then).

    Raises:
      ValueError: as :func:`split_environment`, or JAX was imported before with another set-up
        (start a new process, or set the variables yourself before Python starts).
    """
    check_count(n)
    if "jax" in sys.modules:
        _check_running_jax(n)
        return
    os.environ.update(split_environment(n, os.environ))


def _check_running_jax(n: int) -> None:
    import jax

    devices = jax.devices()
    platform = devices[0].platform
    if platform == "cpu" and len(devices) == n:
        return
    raise ValueError(
        f"--cpu-devices {n}: JAX was imported before the host could be split (it has "
        f"{len(devices)} {platform} device(s)); XLA reads its flags once per process, so run "
        f"the command in a new process, or start Python with XLA_FLAGS=\"{xla_flags(n)}\" "
        "JAX_PLATFORMS=cpu")


__all__ = ["DEVICE_COUNT_FLAG", "SINGLE_THREAD_FLAG", "check_count", "split_environment",
           "split_host_cpu", "xla_flags"]
