"""The XLA options of the training programs (``genjax.train.precision.compiler_options``).

On GPUs the loop compiles its program with ``xla_gpu_exclude_nondeterministic_ops`` (measured on
an H200: without it XLA picked algorithms that gave PixelCNN's step wrong gradients). These tests
run on the CPU: that the option is asked for exactly on GPU platforms and only while the config
says so, that the installed XLA knows its name (an unknown option fails every compilation), and
that a CPU run compiles as before.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import pytest

from genjax.experiments import load_config
from genjax.train.precision import GPU_PLATFORMS, compiler_options

OPTION = {"xla_gpu_exclude_nondeterministic_ops": True}


def test_asked_for_on_gpus_only_and_only_while_on():
    train = load_config("vae_digits").train
    assert train.gpu_exclude_nondeterministic_ops is True  # the default
    for platform in GPU_PLATFORMS:
        assert compiler_options(train, platform) == OPTION
    for platform in ("cpu", "tpu"):
        assert compiler_options(train, platform) == {}
    off = dataclasses.replace(train, gpu_exclude_nondeterministic_ops=False)
    assert all(compiler_options(off, p) == {} for p in (*GPU_PLATFORMS, "cpu"))
    assert load_config("vae_digits", ["train.gpu_exclude_nondeterministic_ops=false"]
                       ).train.gpu_exclude_nondeterministic_ops is False


def test_the_installed_xla_knows_the_option():
    """A name XLA does not know fails the compilation ("No such compile option"); this one is
    accepted by this jaxlib (checked on the CPU backend, which shares XLA's debug options)."""
    step = jax.jit(lambda x: jnp.sum(jnp.sin(x) ** 2))
    compiled = step.lower(jnp.ones(5)).compile(OPTION)
    assert float(compiled(jnp.zeros(5))) == 0.0
    with pytest.raises(Exception, match="No such compile option"):
        step.lower(jnp.ones(5)).compile({"xla_gpu_no_such_option_genjax_test": True})


def test_a_cpu_trainer_compiles_without_extra_options():
    from genjax.train.loop import Trainer

    trainer = Trainer(load_config("vae_digits", ["train.progress=false"]), None)
    assert trainer.compiler_options == {}
    trainer.train(2)
    assert trainer.current_step == 2


def test_a_bad_flag_value_is_refused_naming_the_key():
    with pytest.raises(ValueError, match="gpu_exclude_nondeterministic_ops"):
        load_config("vae_digits", ["train.gpu_exclude_nondeterministic_ops=sometimes"])
