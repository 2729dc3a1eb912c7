"""Tests for the Real NVP modules (genjax.models.flow_layers, genjax.models.flows).

Every bijector is checked the distrax way: round trip x -> z -> x, log-det forward equal to
minus log-det inverse, and agreement of log-det with a brute-force ``log|det J|`` from
``jax.jacfwd`` on a tiny input (slogdet in float64 numpy). Parameters are perturbed away
from their (identity) initialisation so that these checks are not trivially satisfied.
Tolerances: 1e-5 for round trips (float32), 1e-4 absolute for log-dets of O(1) size.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from genjax.models.flow_layers import (
    ActNorm,
    AffineCoupling,
    BatchNormBijector,
    MaskedMLPCoupling,
    checkerboard_mask,
    squeeze,
    unsqueeze,
)
from genjax.models.flows import RealNVP, RealNVP2D

RTOL = 1e-5
LOGDET_ATOL = 1e-4


def _perturb(variables, key, std=0.3):
    """Adds N(0, std^2) noise to every parameter (batch statistics untouched)."""
    params = variables["params"]
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    noisy = [p + std * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys, strict=True)]
    return {**variables, "params": jax.tree.unflatten(treedef, noisy)}


def _init(module, x, key=0, perturb=True):
    init = jax.jit(lambda k, x: module.init(k, x, method="forward"))
    variables = init(jax.random.key(key), x)
    return _perturb(variables, jax.random.key(key + 100)) if perturb else variables


def _brute_logdets(module, variables, x):
    """log|det dz/dx| of the map on each example, from its dense Jacobian (float64 slogdet)."""
    shape = x.shape[1:]

    def f(flat):
        z, _ = module.apply(variables, flat.reshape(1, *shape), method="forward")
        return z.reshape(-1)

    jacs = jax.jit(jax.vmap(jax.jacfwd(f)))(x.reshape(x.shape[0], -1))
    sign, logabsdet = np.linalg.slogdet(np.asarray(jacs, np.float64))
    assert np.all(sign != 0)
    return logabsdet


def _check_bijector(module, variables, x):
    """Round trip, log-det forward == -log-det inverse, log-det == brute-force Jacobian."""
    forward = jax.jit(lambda v, x: module.apply(v, x, method="forward"))
    inverse = jax.jit(lambda v, z: module.apply(v, z, method="inverse"))
    z, ld = forward(variables, x)
    assert z.shape == x.shape and ld.shape == (x.shape[0],)
    x_back, ld_inv = inverse(variables, z)
    np.testing.assert_allclose(x_back, x, rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(ld_inv, -ld, rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(ld, _brute_logdets(module, variables, x), atol=LOGDET_ATOL)
    return z, ld


def _images(shape, key=1):
    return jax.random.normal(jax.random.key(key), shape)


# ----------------------------------------------------------------------------- masks, squeeze


def test_checkerboard_mask_matches_numpy():
    for parity in (0, 1):
        expected = np.array([[(i + j) % 2 == parity for j in range(5)] for i in range(4)])
        np.testing.assert_array_equal(checkerboard_mask(4, 5, parity)[..., 0], expected)
    with pytest.raises(ValueError, match="parity"):
        checkerboard_mask(4, 4, 2)


def test_squeeze_layout_and_exact_inverse():
    x = _images((2, 4, 6, 3))
    y = squeeze(x)
    assert y.shape == (2, 2, 3, 12)
    xn = np.asarray(x)
    for i, j, di, dj, c in np.ndindex(2, 3, 2, 2, 3):
        assert y[1, i, j, (2 * di + dj) * 3 + c] == xn[1, 2 * i + di, 2 * j + dj, c]
    np.testing.assert_array_equal(unsqueeze(y), x)
    with pytest.raises(ValueError, match="even"):
        squeeze(_images((1, 3, 4, 1)))
    with pytest.raises(ValueError, match="divisible by 4"):
        unsqueeze(_images((1, 2, 2, 3)))


# ----------------------------------------------------------------------------- couplings


@pytest.mark.parametrize("parity", [0, 1])
def test_checkerboard_coupling(parity):
    layer = AffineCoupling("checkerboard", parity, features=4, num_blocks=1)
    x = _images((2, 4, 4, 1))
    variables = _init(layer, x)
    z, ld = _check_bijector(layer, variables, x)
    mask = np.asarray(checkerboard_mask(4, 4, parity), bool)[None]
    np.testing.assert_array_equal(np.where(mask, z, 0), np.where(mask, x, 0))
    assert np.abs(np.where(mask, 0, z - x)).max() > 1e-2  # the other half moves
    assert np.abs(ld).min() > 1e-3


@pytest.mark.parametrize("parity", [0, 1])
def test_channel_coupling(parity):
    layer = AffineCoupling("channel", parity, features=4, num_blocks=1)
    x = _images((2, 2, 2, 4))
    variables = _init(layer, x)
    z, _ = _check_bijector(layer, variables, x)
    kept = slice(0, 2) if parity == 0 else slice(2, 4)
    moved = slice(2, 4) if parity == 0 else slice(0, 2)
    np.testing.assert_array_equal(z[..., kept], x[..., kept])
    assert np.abs(z[..., moved] - x[..., moved]).max() > 1e-2


@pytest.mark.parametrize("parity", [0, 1])
def test_mlp_coupling(parity):
    layer = MaskedMLPCoupling(parity, hidden=(16, 16))
    x = _images((3, 5))
    variables = _init(layer, x)
    z, _ = _check_bijector(layer, variables, x)
    kept = np.arange(5) % 2 == parity
    np.testing.assert_array_equal(z[:, kept], x[:, kept])


def test_coupling_scale_is_bounded_by_learned_scale():
    """s = scale * tanh(raw) so each log-det term is at most |scale| per transformed entry."""
    layer = MaskedMLPCoupling(0, hidden=(8,), zero_init=False)
    x = 100.0 * _images((4, 2))
    variables = _init(layer, x, perturb=False)
    variables["params"]["scale"] = jnp.array([0.0, 0.5])
    _, ld = layer.apply(variables, x, method="forward")
    assert np.all(np.abs(ld) <= 0.5 + 1e-6)


def test_coupling_bad_arguments():
    x = _images((1, 4, 4, 1))
    with pytest.raises(ValueError, match="mask_type"):
        AffineCoupling("stripes").init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="parity"):
        AffineCoupling("checkerboard", 3).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="even channel"):
        AffineCoupling("channel", features=4, num_blocks=1).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="4 dims"):
        AffineCoupling().init(jax.random.key(0), x[0])
    with pytest.raises(TypeError, match="floating"):
        AffineCoupling().init(jax.random.key(0), x.astype(jnp.uint8))


# ----------------------------------------------------------------------------- normalization


def test_actnorm_data_dependent_init_and_bijection():
    x = 3.0 + 2.5 * _images((64, 3, 3, 2))
    layer = ActNorm()
    variables = layer.init(jax.random.key(0), x)
    z, ld = layer.apply(variables, x, method="forward")
    np.testing.assert_allclose(z.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.var(axis=(0, 1, 2)), 1.0, rtol=1e-4)
    # log-det = H * W * sum(log_scale) with log_scale = -log(std), computed in numpy.
    expected = -9 * np.log(np.asarray(x, np.float64).std(axis=(0, 1, 2))).sum()
    np.testing.assert_allclose(ld, expected, rtol=1e-5)
    _check_bijector(layer, _perturb(variables, jax.random.key(3)), x[:2])


def test_actnorm_initialised_through_inverse_is_identity():
    x = _images((4, 3))
    variables = ActNorm().init(jax.random.key(0), x, method="inverse")
    y, ld = ActNorm().apply(variables, x, method="inverse")
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(ld, 0.0)


def test_batchnorm_train_uses_batch_stats_and_updates_running_averages():
    x = 2.0 + 3.0 * _images((32, 2, 2, 3))
    layer = BatchNormBijector(momentum=0.9, eps=1e-5)
    variables = layer.init(jax.random.key(0), x, method="forward", train=True)
    stats0 = variables["batch_stats"]
    np.testing.assert_array_equal(stats0["mean"], 0.0)  # initialising does not update
    np.testing.assert_array_equal(stats0["var"], 1.0)
    (z, ld), updates = layer.apply(
        variables, x, train=True, method="forward", mutable=["batch_stats"]
    )
    xn = np.asarray(x, np.float64)
    mean, var = xn.mean(axis=(0, 1, 2)), xn.var(axis=(0, 1, 2))
    np.testing.assert_allclose(z, (xn - mean) / np.sqrt(var + 1e-5), atol=1e-5)
    np.testing.assert_allclose(ld, -0.5 * 4 * np.log(var + 1e-5).sum(), rtol=1e-5)
    np.testing.assert_allclose(updates["batch_stats"]["mean"], 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(updates["batch_stats"]["var"], 0.9 + 0.1 * var, rtol=1e-5)


def test_batchnorm_eval_uses_running_averages_and_is_a_bijection():
    x = _images((3, 2, 2, 3))
    layer = BatchNormBijector()
    variables = layer.init(jax.random.key(0), x)
    running = {"mean": jnp.array([0.5, -1.0, 2.0]), "var": jnp.array([4.0, 0.25, 1.5])}
    variables = _perturb({**variables, "batch_stats": running}, jax.random.key(1))
    z, _ = layer.apply(variables, x, method="forward")  # train=False by default
    p = variables["params"]
    expected = (x - running["mean"]) / np.sqrt(running["var"] + 1e-5) * np.exp(
        p["log_gamma"]
    ) + p["beta"]
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-5)
    _check_bijector(layer, variables, x)
    with pytest.raises(ValueError, match="inverse"):
        layer.apply(variables, x, inverse=True, train=True)


# ----------------------------------------------------------------------------- whole flows


@pytest.mark.parametrize("norm", ["none", "actnorm", "batchnorm"])
def test_realnvp_multiscale_bijection_and_logdet(norm):
    model = RealNVP(num_scales=2, features=4, num_blocks=1, norm=norm)
    x = _images((2, 4, 4, 1))
    variables = _init(model, x)
    z, ld = _check_bijector(model, variables, x)
    assert model.latent_shape(x.shape) == z.shape
    assert np.abs(ld).min() > 1e-2


def test_realnvp_three_scales_round_trip():
    model = RealNVP(num_scales=3, features=4, num_blocks=1, norm="actnorm")
    x = _images((2, 4, 4, 1))
    variables = _init(model, x)
    z, ld = model.apply(variables, x, method="forward")
    x_back, ld_inv = model.apply(variables, z, method="inverse")
    np.testing.assert_allclose(x_back, x, rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(ld_inv, -ld, rtol=RTOL, atol=RTOL)


def test_realnvp_zero_init_is_identity():
    model = RealNVP(num_scales=2, features=4, num_blocks=1, norm="none", zero_init=True)
    x = _images((2, 4, 4, 1))
    variables = model.init(jax.random.key(0), x, method="forward")
    z, ld = model.apply(variables, x, method="forward")
    np.testing.assert_allclose(z, x, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ld, 0.0)
    x_back, ld_inv = model.apply(variables, x, method="inverse")
    np.testing.assert_allclose(x_back, x, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ld_inv, 0.0)


def test_realnvp_batchnorm_train_step_under_jit():
    model = RealNVP(num_scales=2, features=4, num_blocks=1, norm="batchnorm")
    x = _images((4, 4, 4, 1))
    variables = model.init(jax.random.key(0), x, method="forward")

    @jax.jit
    def loss(params, stats, x):
        (z, ld), upd = model.apply(
            {"params": params, "batch_stats": stats}, x, train=True,
            method="forward", mutable=["batch_stats"],
        )
        return jnp.mean(0.5 * jnp.sum(z**2, axis=(1, 2, 3)) - ld), upd

    (value, upd), grads = jax.value_and_grad(loss, has_aux=True)(
        variables["params"], variables["batch_stats"], x
    )
    assert np.isfinite(value)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    # The first coupling is the identity at initialisation, so its normalization saw x.
    first = upd["batch_stats"]["scale0_checkerboard0_norm"]
    np.testing.assert_allclose(first["mean"], 0.01 * np.mean(x), rtol=1e-5)
    np.testing.assert_allclose(first["var"], 0.99 + 0.01 * np.var(x), rtol=1e-5)


def test_realnvp_bad_inputs():
    model = RealNVP(num_scales=3, features=4, num_blocks=1)
    with pytest.raises(ValueError, match="divisible"):
        model.latent_shape((6, 6, 1))
    with pytest.raises(ValueError, match="divisible"):
        model.init(jax.random.key(0), _images((1, 6, 6, 1)))
    with pytest.raises(ValueError, match="norm"):
        RealNVP(norm="layernorm", features=4, num_blocks=1).init(
            jax.random.key(0), _images((1, 4, 4, 1))
        )
    with pytest.raises(TypeError, match="floating"):
        model.init(jax.random.key(0), jnp.zeros((1, 4, 4, 1), jnp.int32))
    with pytest.raises(ValueError, match="4 dims"):
        model.init(jax.random.key(0), _images((4, 4, 1)))


@pytest.mark.parametrize("norm", ["none", "actnorm", "batchnorm"])
def test_realnvp2d_bijection_and_logdet(norm):
    model = RealNVP2D(num_couplings=4, hidden=(16, 16), norm=norm)
    x = _images((3, 2))
    variables = _init(model, x)
    _check_bijector(model, variables, x)
    assert model.latent_shape((7, 2)) == (7, 2)


def test_realnvp2d_zero_init_is_identity():
    model = RealNVP2D(num_couplings=4, hidden=(16,))
    x = _images((5, 2))
    variables = model.init(jax.random.key(0), x, method="forward")
    z, ld = model.apply(variables, x, method="forward")
    np.testing.assert_array_equal(z, x)
    np.testing.assert_array_equal(ld, 0.0)


def test_realnvp2d_density_integrates_to_one():
    """Change of variables gives a normalised density: a grid integral of
    N(f(x); 0, I) |det df/dx| over [-8, 8]^2 (midpoint rule, 400^2 cells) is 1 to 1e-2."""
    model = RealNVP2D(num_couplings=4, hidden=(16, 16), norm="actnorm")
    variables = _init(model, _images((256, 2)), perturb=True)
    edges = np.linspace(-8.0, 8.0, 401)
    mids = 0.5 * (edges[1:] + edges[:-1])
    grid = np.stack(np.meshgrid(mids, mids, indexing="ij"), -1).reshape(-1, 2)
    z, ld = jax.jit(lambda x: model.apply(variables, x, method="forward"))(jnp.asarray(grid))
    log_p = multivariate_normal(np.zeros(2), np.eye(2)).logpdf(np.asarray(z, np.float64))
    mass = np.sum(np.exp(log_p + np.asarray(ld, np.float64))) * (16.0 / 400) ** 2
    np.testing.assert_allclose(mass, 1.0, atol=1e-2)


def test_realnvp2d_bad_inputs():
    model = RealNVP2D(num_couplings=2, hidden=(4,))
    with pytest.raises(ValueError, match="2 dims"):
        model.init(jax.random.key(0), _images((2, 2, 2)))
    with pytest.raises(ValueError, match="D >= 2"):
        model.init(jax.random.key(0), _images((2, 1)))
    with pytest.raises(ValueError, match="num_couplings"):
        RealNVP2D(num_couplings=0).init(jax.random.key(0), _images((2, 2)))
