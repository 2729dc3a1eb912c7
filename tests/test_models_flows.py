"""Tests for the Real NVP modules (genjax.models.flow_layers, genjax.models.flows).

Every bijector is checked the distrax way: round trip x -> z -> x, log-det forward equal to
minus log-det inverse, and agreement of log-det with a brute-force ``log|det J|`` from
``jax.jacrev`` on a tiny input (slogdet in float64 numpy). Parameters are perturbed away
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
    ResNetST,
    checkerboard_mask,
    squeeze,
    unsqueeze,
)
from genjax.models.flows import RealNVP, RealNVP2D

RTOL = 1e-5
LOGDET_ATOL = 1e-4
# One image shape (and its squeezed shape) everywhere: eager op compilations are shared.
IMAGE = (2, 4, 4, 1)
SQUEEZED = (2, 2, 2, 4)
TINY = {"features": 4, "num_blocks": 1}


def _images(shape, seed=1):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _perturb(variables, seed=100, std=0.3):
    """Adds N(0, std^2) noise (numpy rng) to every parameter; batch statistics untouched."""
    rng = np.random.default_rng(seed)
    params = jax.tree.map(
        lambda p: p + jnp.asarray(std * rng.normal(size=p.shape), p.dtype), variables["params"]
    )
    return {**variables, "params": params}


def _init(module, x, perturb=True):
    variables = module.init(jax.random.key(0), x, method="forward")
    return _perturb(variables) if perturb else variables


def _brute_logdets(module, variables, x):
    """log|det dz/dx| of the map on each example, from its dense Jacobian (float64 slogdet)."""
    shape = x.shape[1:]

    def f(flat):
        z, _ = module.apply(variables, flat.reshape(1, *shape), method="forward")
        return z.reshape(-1)

    out = []
    for example in x:
        jac = jax.jacrev(f)(example.reshape(-1))
        sign, logabsdet = np.linalg.slogdet(np.asarray(jac, np.float64))
        assert sign != 0
        out.append(logabsdet)
    return np.array(out)


def _check_bijector(module, variables, x):
    """Round trip, log-det forward == -log-det inverse, log-det == brute-force Jacobian."""
    z, ld = module.apply(variables, x, method="forward")
    assert z.shape == x.shape and ld.shape == (x.shape[0],)
    x_back, ld_inv = module.apply(variables, z, method="inverse")
    np.testing.assert_allclose(x_back, x, rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(ld_inv, -ld, rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(ld, _brute_logdets(module, variables, x), atol=LOGDET_ATOL)
    return z, ld


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
    xn, yn = np.asarray(x), np.asarray(y)
    for i, j, di, dj, c in np.ndindex(2, 3, 2, 2, 3):
        assert yn[1, i, j, (2 * di + dj) * 3 + c] == xn[1, 2 * i + di, 2 * j + dj, c]
    np.testing.assert_array_equal(unsqueeze(y), x)
    with pytest.raises(ValueError, match="even"):
        squeeze(_images((1, 3, 4, 1)))
    with pytest.raises(ValueError, match="divisible by 4"):
        unsqueeze(_images((1, 2, 2, 3)))


# ----------------------------------------------------------------------------- couplings


@pytest.mark.parametrize("parity", [0, 1])
def test_checkerboard_coupling(parity):
    layer = AffineCoupling("checkerboard", parity, **TINY)
    x = _images(IMAGE)
    z, ld = _check_bijector(layer, _init(layer, x), x)
    mask = np.asarray(checkerboard_mask(4, 4, parity), bool)[None]
    np.testing.assert_array_equal(np.where(mask, z, 0), np.where(mask, x, 0))
    assert np.abs(np.where(mask, 0, z - x)).max() > 1e-2  # the other half moves
    assert np.abs(ld).min() > 1e-3


@pytest.mark.parametrize("parity", [0, 1])
def test_channel_coupling(parity):
    layer = AffineCoupling("channel", parity, **TINY)
    x = _images(SQUEEZED)
    z, _ = _check_bijector(layer, _init(layer, x), x)
    kept, moved = (slice(0, 2), slice(2, 4)) if parity == 0 else (slice(2, 4), slice(0, 2))
    np.testing.assert_array_equal(z[..., kept], x[..., kept])
    assert np.abs(z[..., moved] - x[..., moved]).max() > 1e-2


@pytest.mark.parametrize("parity", [0, 1])
def test_mlp_coupling(parity):
    layer = MaskedMLPCoupling(parity, hidden=(16, 16))
    x = _images((2, 5))
    z, _ = _check_bijector(layer, _init(layer, x), x)
    kept = np.arange(5) % 2 == parity
    np.testing.assert_array_equal(z[:, kept], x[:, kept])
    assert np.abs(z[:, ~kept] - x[:, ~kept]).max() > 1e-2


def test_coupling_scale_is_bounded_by_learned_scale():
    """s = scale * tanh(raw), so |log-det| <= sum |scale| over transformed entries."""
    layer = MaskedMLPCoupling(0, hidden=(8,), zero_init=False)
    x = 100.0 * _images((4, 2))
    variables = _init(layer, x, perturb=False)
    variables["params"]["scale"] = jnp.array([0.0, 0.5])
    _, ld = layer.apply(variables, x, method="forward")
    assert np.all(np.abs(ld) <= 0.5 + 1e-6)
    assert np.abs(ld).max() > 0.1


def test_coupling_bad_arguments():
    x = _images(IMAGE)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="mask_type"):
        AffineCoupling("stripes", **TINY).init(key, x)
    with pytest.raises(ValueError, match="parity"):
        AffineCoupling("checkerboard", 3, **TINY).init(key, x)
    with pytest.raises(ValueError, match="even channel"):
        AffineCoupling("channel", **TINY).init(key, x)
    with pytest.raises(ValueError, match="4 dims"):
        AffineCoupling(**TINY).init(key, x[0])
    with pytest.raises(TypeError, match="floating"):
        AffineCoupling(**TINY).init(key, x.astype(jnp.uint8))
    with pytest.raises(ValueError, match="at least 2 features"):
        MaskedMLPCoupling().init(key, _images((2, 1)))


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
    _check_bijector(layer, _perturb(variables), x[:2])


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
    np.testing.assert_array_equal(variables["batch_stats"]["mean"], 0.0)  # init: no update
    np.testing.assert_array_equal(variables["batch_stats"]["var"], 1.0)
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
    x = _images((2, 2, 2, 3))
    layer = BatchNormBijector()
    variables = layer.init(jax.random.key(0), x)
    running = {"mean": jnp.array([0.5, -1.0, 2.0]), "var": jnp.array([4.0, 0.25, 1.5])}
    variables = _perturb({**variables, "batch_stats": running})
    z, _ = layer.apply(variables, x, method="forward")  # train=False by default
    p = variables["params"]
    scale = np.exp(p["log_gamma"]) / np.sqrt(running["var"] + 1e-5)
    expected = (x - running["mean"]) * scale + p["beta"]
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-5)
    _check_bijector(layer, variables, x)
    with pytest.raises(ValueError, match="inverse"):
        layer.apply(variables, x, inverse=True, train=True)


# ----------------------------------------------------------------------------- image flow


@pytest.mark.parametrize("norm", ["none", "actnorm", "batchnorm"])
def test_realnvp_multiscale_bijection_and_logdet(norm):
    """3 checkerboard + squeeze + 3 channel couplings, factor-out, 4 checkerboard couplings."""
    model = RealNVP(num_scales=2, norm=norm, **TINY)
    x = _images(IMAGE)
    variables = _init(model, x)
    couplings = [k for k in variables["params"] if not k.endswith("_norm")]
    assert sorted(couplings) == sorted(
        [f"scale0_checkerboard{i}" for i in range(3)]
        + [f"scale0_channel{i}" for i in range(3)]
        + [f"scale1_checkerboard{i}" for i in range(4)]
    )
    z, ld = _check_bijector(model, variables, x)
    assert model.latent_shape(x.shape) == z.shape
    assert np.abs(ld).min() > 1e-2


def test_realnvp_latent_layout_of_factored_variables():
    """With identity couplings z == x, and the factored-out half of the last squeezed scale
    is the second half of squeeze(z)'s channels: perturbing only the final scale leaves it."""
    model = RealNVP(num_scales=2, norm="none", **TINY)
    x = _images(IMAGE)
    variables = _init(model, x, perturb=False)
    params = dict(variables["params"])
    for name in [k for k in params if k.startswith("scale1_")]:
        params[name] = _perturb({"params": params[name]})["params"]
    z, _ = model.apply({"params": params}, x, method="forward")
    np.testing.assert_array_equal(squeeze(z)[..., 2:], squeeze(x)[..., 2:])
    assert np.abs(squeeze(z)[..., :2] - squeeze(x)[..., :2]).max() > 1e-2


@pytest.mark.slow  # new shapes at every scale: ~10 s of eager compilation on a 2-core CPU
def test_realnvp_three_scales_round_trip():
    model = RealNVP(num_scales=3, norm="actnorm", **TINY)
    x = _images(IMAGE)
    variables = _init(model, x)
    z, ld = model.apply(variables, x, method="forward")
    assert z.shape == x.shape
    x_back, ld_inv = model.apply(variables, z, method="inverse")
    np.testing.assert_allclose(x_back, x, rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(ld_inv, -ld, rtol=RTOL, atol=RTOL)


def test_realnvp_zero_init_is_identity():
    model = RealNVP(num_scales=2, norm="none", zero_init=True, **TINY)
    x = _images(IMAGE)
    variables = _init(model, x, perturb=False)
    z, ld = model.apply(variables, x, method="forward")
    np.testing.assert_allclose(z, x, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ld, 0.0)
    x_back, ld_inv = model.apply(variables, x, method="inverse")
    np.testing.assert_allclose(x_back, x, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ld_inv, 0.0)


def test_realnvp_batchnorm_train_mode_updates_running_averages():
    model = RealNVP(num_scales=2, norm="batchnorm", **TINY)
    x = _images(IMAGE)
    variables = _init(model, x, perturb=False)
    (z, ld), upd = model.apply(variables, x, train=True, method="forward", mutable=["batch_stats"])
    # The first coupling is the identity at initialisation, so its normalization saw x:
    # default momentum 0.99 from (mean 0, var 1).
    first = upd["batch_stats"]["scale0_checkerboard0_norm"]
    np.testing.assert_allclose(first["mean"], 0.01 * np.mean(x), rtol=1e-5)
    np.testing.assert_allclose(first["var"], 0.99 + 0.01 * np.var(x), rtol=1e-5)
    z_eval, _ = model.apply(variables, x, method="forward")
    assert np.abs(z - z_eval).max() > 1e-3  # train and eval statistics differ
    with pytest.raises(ValueError, match="inverse"):
        model.apply(variables, x, inverse=True, train=True)


def test_realnvp_bad_inputs():
    model = RealNVP(num_scales=3, **TINY)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="divisible"):
        model.latent_shape((6, 6, 1))
    with pytest.raises(ValueError, match="divisible"):
        model.init(key, _images((1, 6, 6, 1)))
    with pytest.raises(ValueError, match="norm"):
        RealNVP(norm="layernorm", **TINY).init(key, _images(IMAGE))
    with pytest.raises(ValueError, match="num_scales"):
        RealNVP(num_scales=0, **TINY).init(key, _images(IMAGE))
    with pytest.raises(TypeError, match="floating"):
        model.init(key, jnp.zeros(IMAGE, jnp.int32))
    with pytest.raises(ValueError, match="4 dims"):
        model.init(key, _images((4, 4, 1)))


# ----------------------------------------------------------------------------- 2-D toy flow


@pytest.mark.parametrize("norm", ["none", "actnorm", "batchnorm"])
def test_realnvp2d_bijection_and_logdet(norm):
    model = RealNVP2D(num_couplings=4, hidden=(16, 16), norm=norm)
    x = _images((2, 2))
    _check_bijector(model, _init(model, x), x)
    assert model.latent_shape((7, 2)) == (7, 2)


def test_realnvp2d_zero_init_is_identity():
    model = RealNVP2D(num_couplings=4, hidden=(16, 16))
    x = _images((2, 2))
    z, ld = model.apply(_init(model, x, perturb=False), x, method="forward")
    np.testing.assert_array_equal(z, x)
    np.testing.assert_array_equal(ld, 0.0)


def test_realnvp2d_density_matches_its_samples():
    """Change of variables, checked against sampling: the grid integral of
    p(x) = N(f(x); 0, I) |det df/dx| over the box [-8, 8]^2 (midpoint rule, 400^2 cells)
    equals the Monte Carlo fraction of samples x = f^-1(eps), eps ~ N(0, I), in the box
    (20000 samples: standard error < 0.004, tolerance 0.01)."""
    model = RealNVP2D(num_couplings=4, hidden=(16, 16), norm="actnorm")
    variables = _init(model, _images((256, 2)))
    edges = np.linspace(-8.0, 8.0, 401)
    mids = 0.5 * (edges[1:] + edges[:-1])
    grid = np.stack(np.meshgrid(mids, mids, indexing="ij"), -1).reshape(-1, 2)
    z, ld = jax.jit(lambda x: model.apply(variables, x, method="forward"))(jnp.asarray(grid))
    log_p = multivariate_normal(np.zeros(2), np.eye(2)).logpdf(np.asarray(z, np.float64))
    mass = np.sum(np.exp(log_p + np.asarray(ld, np.float64))) * (16.0 / 400) ** 2
    samples, _ = model.apply(variables, _images((20000, 2), seed=7), method="inverse")
    inside = np.mean(np.all(np.abs(np.asarray(samples)) < 8.0, axis=1))
    assert 0.5 < mass < 0.999  # the box is a real test: some mass lies outside it
    np.testing.assert_allclose(mass, inside, atol=1e-2)


def test_realnvp2d_batchnorm_train_step_under_jit():
    model = RealNVP2D(num_couplings=2, hidden=(16,), norm="batchnorm")
    x = 1.0 + 2.0 * _images((64, 2))
    variables = _init(model, x)

    @jax.jit
    def loss(params, stats, x):
        (z, ld), upd = model.apply(
            {"params": params, "batch_stats": stats},
            x,
            train=True,
            method="forward",
            mutable=["batch_stats"],
        )
        return jnp.mean(0.5 * jnp.sum(z**2, axis=-1) - ld), upd

    (value, upd), grads = jax.value_and_grad(loss, has_aux=True)(
        variables["params"], variables["batch_stats"], x
    )
    assert np.isfinite(value)
    assert all(np.all(np.isfinite(g)) and np.abs(g).max() > 0 for g in jax.tree.leaves(grads))
    for name, stats in upd["batch_stats"].items():
        assert np.abs(stats["mean"]).max() > 1e-4, name


def test_realnvp2d_bad_inputs():
    model = RealNVP2D(num_couplings=2, hidden=(4,))
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="2 dims"):
        model.init(key, _images((2, 2, 2)))
    with pytest.raises(ValueError, match="D >= 2"):
        model.init(key, _images((2, 1)))
    with pytest.raises(ValueError, match="num_couplings"):
        RealNVP2D(num_couplings=0).init(key, _images((2, 2)))
    with pytest.raises(ValueError, match="inverse"):
        model.init(key, _images((2, 2)), inverse=True, train=True)


# ----------------------------------------------------------------------------- precision
#
# dtype=bfloat16 runs only the s/t networks in bfloat16; the data path is float32. Given the
# same s and t, the forward map, its inverse and the log-dets are float32 computations, so the
# float32 tolerances above apply to them unchanged.


def _variables_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert u.dtype == v.dtype == jnp.float32 and u.shape == v.shape
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("norm", ["actnorm", "batchnorm"])
def test_bfloat16_dtype_keeps_the_float32_variables_and_their_init(norm):
    """Same names, shapes and float32 values: the zero-initialised couplings are exactly the
    identity in any dtype (s = t = 0), so even ActNorm's data-dependent init is unchanged."""
    x = _images(IMAGE)
    init = lambda m: m.init(jax.random.key(0), x, method="forward")
    _variables_equal(init(RealNVP(norm=norm, dtype=jnp.bfloat16, **TINY)),
                     init(RealNVP(norm=norm, **TINY)))
    x2 = _images((8, 2))
    init2 = lambda m: m.init(jax.random.key(0), x2, method="forward")
    _variables_equal(init2(RealNVP2D(4, (16, 16), norm, dtype=jnp.bfloat16)),
                     init2(RealNVP2D(4, (16, 16), norm)))


def test_bfloat16_coupling_applies_its_s_and_t_in_float32():
    """The coupling takes the bfloat16 network output r, and computes s = scale * tanh(r_s),
    y = b x + (1 - b)(x exp(s) + t) and log-det = sum(s) to float32 accuracy (float64
    reference, tolerance 1e-6: a few float32 roundings; a bfloat16 data path would be off by
    about 4e-3)."""
    x = _images(IMAGE)
    layer = AffineCoupling("checkerboard", 1, dtype=jnp.bfloat16, **TINY)
    variables = _init(layer, x)
    y, ld = layer.apply(variables, x, method="forward")
    assert y.dtype == ld.dtype == jnp.float32
    b = np.asarray(checkerboard_mask(4, 4, 1), np.float64)
    net = ResNetST(4, 2, num_blocks=1, dtype=jnp.bfloat16)
    raw = net.apply({"params": variables["params"]["st"]}, b.astype(np.float32) * x)
    assert raw.dtype == jnp.bfloat16
    raw = np.asarray(raw, np.float64)
    scale = np.asarray(variables["params"]["scale"], np.float64)
    s, t = (1 - b) * scale * np.tanh(raw[..., :1]), (1 - b) * raw[..., 1:]
    xd = np.asarray(x, np.float64)
    np.testing.assert_allclose(y, b * xd + (1 - b) * (xd * np.exp(s) + t), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ld, s.sum(axis=(1, 2, 3)), rtol=1e-6)
    assert np.abs(s).max() > 0.1  # perturbed parameters: s is not trivially 0


def test_bfloat16_mlp_coupling_applies_its_s_and_t_in_float32():
    x = _images((3, 4))
    layer = MaskedMLPCoupling(0, hidden=(16,), dtype=jnp.bfloat16)
    variables = _init(layer, x)
    y, ld = layer.apply(variables, x, method="forward")
    assert y.dtype == ld.dtype == jnp.float32
    p = variables["params"]
    b = (np.arange(4) % 2 == 0).astype(np.float64)
    bf = lambda a: jnp.asarray(a, jnp.bfloat16)  # what nn.Dense(dtype=bfloat16) computes
    h = jax.nn.relu(bf(b * x) @ bf(p["dense0"]["kernel"]) + bf(p["dense0"]["bias"]))
    raw = np.asarray(h @ bf(p["dense_out"]["kernel"]) + bf(p["dense_out"]["bias"]), np.float64)
    s = (1 - b) * np.asarray(p["scale"], np.float64) * np.tanh(raw[:, :4])
    t = (1 - b) * raw[:, 4:]
    xd = np.asarray(x, np.float64)
    np.testing.assert_allclose(y, b * xd + (1 - b) * (xd * np.exp(s) + t), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ld, s.sum(axis=1), rtol=1e-6)


@pytest.mark.parametrize("norm", ["actnorm", "batchnorm"])
def test_bfloat16_realnvp_inverts_its_forward_map_to_float32_accuracy(norm):
    """x -> z -> x with bfloat16 s/t networks, at the float32 tolerance RTOL. Justification:
    each coupling passes its conditioning half through bit for bit (y = 1 * x + 0 * ...), so
    the inverse's s/t network sees exactly the forward's input and returns the same bfloat16
    s and t; from there both directions are the float32 arithmetic of the float32 test. The
    bfloat16 network does change z (checked below), so s and t are not trivially zero."""
    model = RealNVP(num_scales=2, norm=norm, dtype=jnp.bfloat16, **TINY)
    x = _images(IMAGE)
    variables = _init(model, x)
    z, ld = model.apply(variables, x, method="forward")
    assert z.dtype == ld.dtype == jnp.float32
    x_back, ld_inv = model.apply(variables, z, method="inverse")
    assert x_back.dtype == ld_inv.dtype == jnp.float32
    np.testing.assert_allclose(x_back, x, rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(ld_inv, -ld, rtol=RTOL, atol=RTOL)
    z32, _ = RealNVP(num_scales=2, norm=norm, **TINY).apply(variables, x, method="forward")
    assert np.abs(np.asarray(z) - np.asarray(z32)).max() > 1e-4


def test_bfloat16_realnvp2d_round_trip_and_float32_outputs_under_jit():
    model = RealNVP2D(num_couplings=4, hidden=(16, 16), norm="batchnorm", dtype=jnp.bfloat16)
    x = _images((8, 2))
    variables = _init(model, x)
    z, ld = jax.jit(lambda v, x: model.apply(v, x, method="forward"))(variables, x)
    x_back, ld_inv = jax.jit(lambda v, z: model.apply(v, z, method="inverse"))(variables, z)
    assert {a.dtype for a in (z, ld, x_back, ld_inv)} == {jnp.dtype(jnp.float32)}
    np.testing.assert_allclose(x_back, x, rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(ld_inv, -ld, rtol=RTOL, atol=RTOL)
    # Training mode: the batch statistics and their running averages stay float32.
    _, upd = model.apply(variables, x, train=True, method="forward", mutable=["batch_stats"])
    assert {a.dtype for a in jax.tree.leaves(upd)} == {jnp.dtype(jnp.float32)}
