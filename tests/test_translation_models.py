"""CycleGAN / StarGAN architectures: shapes, instance norm, PatchGAN receptive field."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.models.translation import (
    PatchGANDiscriminator,
    ResnetGenerator,
    StarGANDiscriminator,
    StarGANGenerator,
    instance_norm,
    patchgan_receptive_field,
)


def _init(module, *args):
    return jax.jit(module.init)(jax.random.key(0), *args)


def _apply(module, params, *args):
    return jax.jit(module.apply)(params, *args)


def _x(b=3, s=8, c=1, seed=0):
    return jax.random.uniform(jax.random.key(seed), (b, s, s, c), minval=-1, maxval=1)


@pytest.fixture(scope="module")
def generator():
    """A 2-channel ResNet generator (one downsampling, 8x8 -> 4x4), its parameters and its
    jitted apply (compiled once for the (4, 8, 8, 2) batches used here)."""
    g = ResnetGenerator(out_channels=2, base_features=4, num_downsamples=1, num_blocks=1)
    return g, _init(g, _x(b=4, c=2)), jax.jit(g.apply)


def test_resnet_generator_maps_images_to_images_in_the_tanh_range(generator):
    g, params, apply = generator
    x = 3.0 * _x(b=4, c=2)
    y = apply(params, x)
    assert y.shape == x.shape and float(jnp.max(jnp.abs(y))) <= 1.0
    with pytest.raises(ValueError, match="divisible by 2\\*\\*num_downsamples = 8"):
        _init(ResnetGenerator(out_channels=1, num_downsamples=3), _x(s=12))
    with pytest.raises(ValueError, match="leave at least 2x2 pixels"):
        _init(ResnetGenerator(out_channels=1, num_downsamples=3), _x(s=8))


def test_instance_norm_normalises_each_image_and_channel_on_its_own(generator):
    x = 3.0 * _x(b=4, s=6, c=2) + 5.0
    y = instance_norm(False).apply({}, x)
    np.testing.assert_allclose(np.mean(np.asarray(y), axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.var(np.asarray(y), axis=(1, 2)), 1.0, rtol=1e-3)
    # Invariant to a per-image affine change of the input (up to epsilon)...
    scaled = x.at[0].set(2.0 * x[0] - 7.0)
    np.testing.assert_allclose(instance_norm(False).apply({}, scaled), y, atol=1e-4)
    # ...so a generator's output for one image does not depend on the rest of the batch
    # (unlike batch norm's in training).
    g, params, apply = generator
    x = _x(b=4, c=2)
    others = x.at[1:].set(10.0 * x[1:] + 1.0)
    np.testing.assert_allclose(apply(params, x)[0], apply(params, others)[0], atol=1e-5)
    # The affine version (StarGAN) has a scale and bias per channel.
    assert set(instance_norm(True).init(jax.random.key(0), x)["params"]) == {"scale", "bias"}


@pytest.mark.parametrize(
    "num_layers, size", [(1, 32), pytest.param(2, 48, marks=pytest.mark.slow)])
def test_patchgan_receptive_field_measured_by_gradients(num_layers, size):
    field = patchgan_receptive_field(num_layers)
    assert (patchgan_receptive_field(1), patchgan_receptive_field(3)) == (16, 70)
    # norm="none": instance norm would make every score depend on the whole image.
    d = PatchGANDiscriminator(base_features=2, num_layers=num_layers, norm="none")
    x = _x(b=1, s=size)
    params = _init(d, x)
    scores = _apply(d, params, x)
    h = (size // 2**num_layers) - 2  # two stride-1 4x4 convolutions with padding 1
    assert scores.shape == (1, h, h, 1)
    i = h // 2
    grad = jax.jit(jax.grad(lambda v: d.apply(params, v)[0, i, i, 0]))(x)[0, :, :, 0]
    rows = np.flatnonzero(np.any(np.asarray(grad) != 0, axis=1))
    cols = np.flatnonzero(np.any(np.asarray(grad) != 0, axis=0))
    assert rows[0] > 0 and rows[-1] < size - 1  # not clipped by the image border
    assert rows[-1] - rows[0] + 1 == field and cols[-1] - cols[0] + 1 == field


def test_patchgan_rejects_images_too_small_for_its_depth():
    with pytest.raises(ValueError, match="too small for num_layers=3"):
        _init(PatchGANDiscriminator(base_features=2, num_layers=3), _x(b=2))


def test_stargan_generator_is_conditioned_on_the_target_label():
    x = _x(b=2)
    g = StarGANGenerator(out_channels=1, base_features=4, num_downsamples=0, num_blocks=0)
    c0 = jax.nn.one_hot(jnp.array([0, 0]), 3)
    c2 = jax.nn.one_hot(jnp.array([2, 2]), 3)
    params = _init(g, x, c0)
    # The label enters as 3 extra input channels of the first convolution.
    first = params["params"]["Conv_0"]["kernel"]
    assert first.shape == (7, 7, 1 + 3, 4)
    y0, y2 = _apply(g, params, x, c0), _apply(g, params, x, c2)
    assert y0.shape == x.shape and float(jnp.max(jnp.abs(y0 - y2))) > 1e-4
    with pytest.raises(ValueError, match="c must be label vectors"):
        _apply(g, params, x, jnp.zeros((3, 3)))


def test_stargan_discriminator_has_an_adversarial_and_a_classification_head():
    x = _x(b=5)
    d = StarGANDiscriminator(num_domains=4, base_features=4, num_layers=1)
    params = _init(d, x)
    scores, logits = _apply(d, params, x)
    assert scores.shape == (5, 4, 4, 1) and logits.shape == (5, 4)
    # The classification head covers the whole 4x4 map left after one stride-2 conv.
    assert params["params"]["classification"]["kernel"].shape == (4, 4, 4, 4)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*num_layers = 16"):
        _init(StarGANDiscriminator(num_domains=2, num_layers=4), _x(s=8))


# -- mixed precision (dtype = train.compute_dtype) ----------------------------------------------
MODULES = {  # name: (module class, constructor arguments, extra call arguments)
    "resnet_generator": (ResnetGenerator, dict(out_channels=1, base_features=4,
                                               num_downsamples=1, num_blocks=1), ()),
    "patchgan": (PatchGANDiscriminator, dict(base_features=4, num_layers=1), ()),
    "stargan_generator": (StarGANGenerator, dict(out_channels=1, base_features=4,
                                                 num_downsamples=1, num_blocks=1),
                          (jax.nn.one_hot(jnp.array([0, 2, 1]), 3),)),
    "stargan_discriminator": (StarGANDiscriminator, dict(num_domains=3, base_features=4,
                                                         num_layers=2), ()),
}


def _conv_input_dtypes(fn, *args) -> set[str]:
    jaxpr = jax.make_jaxpr(fn)(*args).jaxpr
    found, stack = set(), [jaxpr]
    while stack:
        for eqn in stack.pop().eqns:
            if eqn.primitive.name == "conv_general_dilated":
                found.update(str(v.aval.dtype) for v in eqn.invars)
            for value in eqn.params.values():
                for item in value if isinstance(value, tuple | list) else (value,):
                    sub = item if hasattr(item, "eqns") else getattr(item, "jaxpr", None)
                    if hasattr(sub, "eqns"):
                        stack.append(sub)
    return found


@pytest.mark.parametrize("name", [  # the ResNet generator compiles for ~15 s: -m slow
    pytest.param(n, marks=pytest.mark.slow) if n == "resnet_generator" else n
    for n in sorted(MODULES)])
def test_bfloat16_modules_keep_float32_params_and_outputs(name):
    cls, kwargs, extra = MODULES[name]
    x = _x()
    f32, b16 = cls(**kwargs), cls(**kwargs, dtype=jnp.bfloat16)
    assert f32.dtype == jnp.float32  # the default computation dtype
    # lazy_init: the initialisers without the forward pass (what init's values come from).
    params = f32.lazy_init(jax.random.key(0), x, *extra)
    same = b16.lazy_init(jax.random.key(0), x, *extra)
    # The same parameter tree (names, shapes, float32, values): dtype is not a parameter.
    assert jax.tree.structure(params) == jax.tree.structure(same)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(same), strict=True):
        assert a.dtype == b.dtype == jnp.float32 and np.array_equal(a, b)
    outputs = jax.tree.leaves(_apply(b16, params, x, *extra))
    assert all(o.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(o))) for o in outputs)
    expected = jax.tree.leaves(jax.eval_shape(f32.apply, params, x, *extra))
    assert [o.shape for o in outputs] == [o.shape for o in expected]
    # Every convolution computes in the module's dtype, in the forward and the backward pass;
    # the gradients with respect to the float32 parameters are float32.
    grad = jax.grad(lambda p, m: sum(jnp.sum(o) for o in jax.tree.leaves(m.apply(p, x, *extra))))
    assert _conv_input_dtypes(lambda p: grad(p, b16), params) == {"bfloat16"}
    assert _conv_input_dtypes(lambda p: grad(p, f32), params) == {"float32"}
    grads = jax.eval_shape(lambda p: grad(p, b16), params)
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))


@pytest.mark.parametrize("affine", [False, True])
def test_bfloat16_instance_norm_computes_its_statistics_in_float32(affine):
    x = (3.0 * _x(b=2, s=6, c=3) + 5.0).astype(jnp.bfloat16)
    norm = instance_norm(affine, dtype=jnp.bfloat16)
    variables = norm.init(jax.random.key(0), x)
    if affine:
        assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(variables))
        variables = {"params": {"scale": jnp.array([0.5, 1.0, 2.0]),
                                "bias": jnp.array([0.1, 0.0, -0.3])}}
    y = norm.apply(variables, x)
    assert y.dtype == jnp.bfloat16
    # Bitwise the float32 normalisation of the same (bfloat16) values, rounded once at the end:
    # statistics in bfloat16 would lose the mean of 5 against a spread of 3 to its 8-bit spacing.
    expected = instance_norm(affine).apply(variables, x.astype(jnp.float32))
    np.testing.assert_array_equal(np.asarray(y, np.float32),
                                  np.asarray(expected.astype(jnp.bfloat16), np.float32))
