"""Tests for the autoregressive image models (PixelCNN, Gated PixelCNN, PixelRNN, PixelCNN++, multiscale).

The autoregressive property is checked with gradients: for a tiny model and a random image, the
Jacobian of every output sub-pixel with respect to every input sub-pixel (``jax.jacrev``) must
be exactly zero wherever the ordering forbids a dependence (masked weights are exact zeros, so
no tolerance is involved), and nonzero on chosen allowed positions so the check is not vacuous.
Parameters are drawn with numpy over ``jax.eval_shape(model.init)`` shapes: compiling the
initializers is slower on CPU than the models, and causality must hold for any weights.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from genjax.models.multiscale_pixelcnn import (
    MultiscalePixelCNN,
    extract_group,
    known_groups,
    multiscale_groups,
)
from genjax.models.pixelcnn import (
    GatedPixelCNN,
    MaskedConv2D,
    PixelCNN,
    causal_mask,
    channel_groups,
)
from genjax.models.pixelcnnpp import PixelCNNPlusPlus
from genjax.models.pixelrnn import PixelRNN, _lstm_update, skew, unskew

TINY = dict(num_values=4, output_features=12)  # small softmax keeps the compiled graphs tiny


def random_variables(model, *args, seed=0, **kwargs):
    """Variables with the shapes of ``model.init``: N(0, 1 / fan_in) weights, N(0, 0.01) vectors."""
    shapes = jax.eval_shape(functools.partial(model.init, **kwargs), jax.random.key(0), *args)
    rng = np.random.default_rng(seed)

    def draw(s):
        scale = 1 / math.sqrt(math.prod(s.shape[:-1])) if len(s.shape) > 1 else 0.1  # biases: 0.1
        return jnp.asarray(rng.normal(size=s.shape) * scale, s.dtype)

    return jax.tree.map(draw, shapes)


def image(height, width, channels, seed=1):
    return jnp.asarray(
        np.random.default_rng(seed).uniform(-1, 1, (1, height, width, channels)), jnp.float32
    )


def sub_pixel_jacobian(model, variables, x, reduce_last=None, **kwargs):
    """J[i, j, c, i', j', c'] = d out[i, j, c] / d x[i', j', c'], logits randomly projected per sub-pixel.

    The last output axis (softmax logits, or PixelCNN++'s mixture parameters) is reduced by a
    random projection when ``reduce_last`` (default: for 5-D outputs).

    Computed on the CPU backend whatever the default one: the tests read structural zeros
    (``J == 0``) of the architecture, which XLA:CPU's direct convolutions keep exactly; on an
    H200 the blind-spot pixel read as seen. A GPU convolution algorithm (Winograd, FFT) can leave
    float32 round-off where masks put zeros. PixelCNN's GPU training step also differed from its
    CPU one by far more than round-off: traced later to nondeterministic algorithms that XLA's
    autotuner picked (wrong bias gradients; excluded on GPUs since, see
    ``train.gpu_exclude_nondeterministic_ops`` and README, "Accelerators"); whether the same
    algorithms made that Jacobian reading was not checked.
    """
    cpu = jax.devices("cpu")[0]
    variables, x = jax.device_put((variables, x), cpu)
    kwargs = {k: jax.device_put(v, cpu) if isinstance(v, jax.Array | np.ndarray) else v
              for k, v in kwargs.items()}  # static flags (train=False) stay Python values
    out_shape = jax.eval_shape(functools.partial(model.apply, **kwargs), variables, x).shape
    proj = jax.device_put(np.random.default_rng(7).normal(size=out_shape[1:]).astype(np.float32),
                          cpu)
    reduce_last = len(out_shape) == 5 if reduce_last is None else reduce_last

    def f(x0):
        out = model.apply(variables, x0[None], **kwargs)[0] * proj
        return out.sum(-1) if reduce_last else out

    return np.asarray(jax.jit(jax.jacrev(f))(x[0]))


def raster_forbidden(height, width, channels):
    """True where out[i, j, c] must not depend on x[i', j', c']: later pixels, same pixel c' >= c."""
    r = np.arange(height * width).reshape(height, width)
    r_out = r[:, :, None, None, None, None]
    r_in = r[None, None, None, :, :, None]
    c_out = np.arange(channels)[None, None, :, None, None, None]
    c_in = np.arange(channels)[None, None, None, None, None, :]
    return (r_in > r_out) | ((r_in == r_out) & (c_in >= c_out))


def assert_causal(jac, forbidden):
    """No forbidden dependence; and the masks are not too strict: for each output channel, at some
    position (ReLU units of tiny nets may be inactive at others), the left neighbour, the pixel
    above and every earlier channel of the same pixel are seen."""
    assert np.count_nonzero(jac[forbidden]) == 0, np.argwhere((jac != 0) & forbidden)[:5]
    h, w, c = jac.shape[:3]
    rows, cols = np.meshgrid(np.arange(1, h), np.arange(1, w), indexing="ij")
    for ch in range(c):
        left = jac[rows, cols, ch, rows, cols - 1] != 0  # (h-1, w-1, C) input channels
        above = jac[rows, cols, ch, rows - 1, cols] != 0
        same = jac[rows, cols, ch, rows, cols, :ch] != 0
        assert np.any(np.all(left, -1)), f"channel {ch} never sees its left neighbour"
        assert np.any(np.all(above, -1)), f"channel {ch} never sees the pixel above"
        assert np.any(np.all(same, -1)), (
            f"channel {ch} never sees the earlier channels of its pixel"
        )


# ---------------------------------------------------------------- masked convolution


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_causal_mask_matches_raster_and_channel_order(mask_type):
    kh, kw, n_in, n_out, colors = 3, 5, 6, 9, 3
    mask = causal_mask((kh, kw), n_in, n_out, mask_type, colors)
    for a in range(kh):
        for b in range(kw):
            for i in range(n_in):
                for o in range(n_out):
                    # Input (dy, dx, colour of i) must precede the current sub-pixel (0, 0, colour of o).
                    src = (a - kh // 2, b - kw // 2, i // (n_in // colors))
                    dst = (0, 0, o // (n_out // colors))
                    allowed = src < dst or (mask_type == "B" and src == dst)
                    assert mask[a, b, i, o] == float(allowed), (a, b, i, o)


def test_causal_mask_grey_centre_and_bad_arguments():
    assert causal_mask((3, 3), 1, 4, "A")[1, 1].sum() == 0
    assert np.all(causal_mask((3, 3), 4, 4, "B")[1, 1] == 1)
    with pytest.raises(ValueError, match="mask_type"):
        causal_mask((3, 3), 1, 1, "C")
    with pytest.raises(ValueError, match="kernel_size"):
        causal_mask((2, 3), 1, 1, "A")


def test_masked_conv_matches_numpy_correlation():
    layer = MaskedConv2D(4, (3, 3), "A", color_channels=2)
    x = image(4, 5, 2)
    variables = layer.init(jax.random.key(0), x)
    kernel = np.asarray(variables["params"]["kernel"]) * causal_mask((3, 3), 2, 4, "A", 2)
    padded = np.pad(np.asarray(x[0]), ((1, 1), (1, 1), (0, 0)))
    expected = np.zeros((4, 5, 4))
    for i in range(4):
        for j in range(5):
            expected[i, j] = np.einsum("abi,abio->o", padded[i : i + 3, j : j + 3], kernel)
    np.testing.assert_allclose(layer.apply(variables, x)[0], expected, rtol=1e-5, atol=1e-5)


def test_gated_outputs_have_one_colour_layout_per_gate():
    # 4 LSTM gates of 5 units for RGB: each gate's units are coloured [R, R, G, G, B] (5 * c // 3).
    groups = channel_groups(20, 3, num_gates=4)
    for gate in np.split(groups, 4):
        np.testing.assert_array_equal(gate, [0, 0, 1, 1, 2])
    mask = causal_mask((1, 1), 3, 20, "A", 3, num_gates=4)[0, 0]  # (in colour, out feature)
    np.testing.assert_array_equal(
        mask, (np.arange(3)[:, None] < groups[None, :]).astype(np.float32)
    )


# ---------------------------------------------------------------- PixelCNN and Gated PixelCNN


@pytest.mark.parametrize(
    "model, channels",
    [
        (PixelCNN(10, 1, color_channels=3, **TINY), 3),
        (PixelCNN(8, 1, color_channels=1, output="bernoulli", output_features=16), 1),
    ],
    ids=["rgb-softmax", "binary"],
)
def test_pixelcnn_is_autoregressive(model, channels):
    x = image(5, 5, channels)
    jac = sub_pixel_jacobian(model, random_variables(model, x), x)
    assert_causal(jac, raster_forbidden(5, 5, channels))


def test_pixelcnn_has_blind_spot_and_gated_pixelcnn_has_none():
    x = image(8, 8, 1)
    i, j = 4, 3
    earlier = np.arange(64).reshape(8, 8) < 8 * i + j
    plain = PixelCNN(8, 2, output="bernoulli", output_features=16)
    seen_plain = sub_pixel_jacobian(plain, random_variables(plain, x), x)[i, j, 0, :, :, 0] != 0
    # 7x7 type-A conv then two 3x3 type-B blocks: pixel (i-1, j+4) is never reached although
    # (i-2, j+4), further away, is (the blind spot of van den Oord et al. 2016c, Fig. 1).
    assert not seen_plain[i - 1, j + 4] and seen_plain[i - 2, j + 4]
    gated = GatedPixelCNN(4, 3, output="bernoulli", output_features=16)
    seen_gated = sub_pixel_jacobian(gated, random_variables(gated, x), x)[i, j, 0, :, :, 0] != 0
    np.testing.assert_array_equal(seen_gated, earlier)  # every earlier pixel, nothing else


def test_gated_pixelcnn_rgb_is_autoregressive():
    model = GatedPixelCNN(10, 2, color_channels=3, **TINY)
    x = image(5, 5, 3)
    assert_causal(
        sub_pixel_jacobian(model, random_variables(model, x), x), raster_forbidden(5, 5, 3)
    )


def test_conditional_gated_pixelcnn_depends_on_label_and_stays_causal():
    model = GatedPixelCNN(4, 2, color_channels=1, num_classes=3, embed_features=5, **TINY)
    x = image(5, 5, 1)
    variables = random_variables(model, x, jnp.array([0]))
    apply = jax.jit(model.apply)
    outputs = [np.asarray(apply(variables, x, jnp.array([k]))) for k in range(3)]
    assert outputs[0].shape == (1, 5, 5, 1, 4)
    # The label reaches every position, including the first pixel, which sees no pixel at all.
    assert np.all(np.abs(outputs[0] - outputs[1]).max(axis=-1) > 0)
    assert np.all(np.abs(outputs[1] - outputs[2]).max(axis=-1) > 0)
    jac = sub_pixel_jacobian(model, variables, x, labels=jnp.array([2]))
    assert_causal(jac, raster_forbidden(5, 5, 1))


# ---------------------------------------------------------------- PixelRNN


def test_skew_matches_numpy_and_unskew_inverts_it():
    x = image(3, 4, 2)
    skewed = np.asarray(skew(x))
    expected = np.zeros((1, 3, 6, 2), np.float32)
    for i in range(3):
        expected[:, i, i : i + 4] = np.asarray(x[:, i])
    np.testing.assert_array_equal(skewed, expected)
    np.testing.assert_array_equal(unskew(skew(x), 4), x)


@pytest.mark.parametrize("layer", ["row_lstm", "diagonal_bilstm"])
def test_pixelrnn_is_autoregressive(layer):
    model = PixelRNN(layer, hidden=5, num_layers=2, color_channels=3, **TINY)
    x = image(5, 5, 3)
    jac = sub_pixel_jacobian(model, random_variables(model, x), x)
    assert_causal(jac, raster_forbidden(5, 5, 3))
    if layer == "diagonal_bilstm":  # both directions: pixels far up-left and far up-right are seen
        seen = np.abs(jac[4, 2]).sum(axis=0) != 0  # any output channel, (H, W, C) inputs
        assert np.all(seen[1, 0]) and np.all(seen[1, 4])


# ---------------------------------------------------------------- PixelCNN++


def test_pixelcnnpp_is_causal_without_dropout():
    model = PixelCNNPlusPlus(features=4, num_resnet=1, num_mixtures=2, weight_norm=True)
    x = image(8, 8, 3)
    jac = sub_pixel_jacobian(model, random_variables(model, x), x, reduce_last=True, train=False)
    seen = np.abs(jac).sum(-1) != 0
    r = np.arange(64).reshape(8, 8)
    # Mixture parameters of pixel p may depend on pixels strictly before p only (no channel of p).
    assert not np.any(seen & (r[None, None] >= r[:, :, None, None]))
    np.testing.assert_array_equal(seen[4, 4], r < 8 * 4 + 4)  # and on every earlier pixel here


def test_pixelcnnpp_dropout_follows_the_rng():
    model = PixelCNNPlusPlus(
        features=4, num_resnet=1, num_mixtures=1, dropout_rate=0.5, weight_norm=False
    )
    x = image(4, 4, 1)
    variables = random_variables(model, x)
    # train=False (the default) is covered by the causality test above; here the train=True path.
    train = jax.jit(lambda v, x, key: model.apply(v, x, train=True, rngs={"dropout": key}))
    drop1, drop2 = train(variables, x, jax.random.key(1)), train(variables, x, jax.random.key(2))
    assert drop1.shape == (1, 4, 4, 3) and np.all(np.isfinite(drop1))
    np.testing.assert_array_equal(drop1, train(variables, x, jax.random.key(1)))  # reproducible
    assert not np.allclose(drop1, drop2)  # and a different mask for a different key


# ---------------------------------------------------------------- parallel multiscale PixelCNN


def test_multiscale_groups_partition_the_image_in_few_steps():
    height, width, scales = 16, 8, 2
    groups = multiscale_groups(height, width, scales)
    assert len(groups) == 1 + 3 * scales
    owner = np.full((height, width), -1)
    for k, g in enumerate(groups):
        block = owner[g.row_offset :: g.stride, g.col_offset :: g.stride]
        assert np.all(block == -1)
        block[...] = k
    assert np.all(owner >= 0)
    # Group 1 of the finest scale (every other pixel) is exactly the base plus the coarser groups.
    assert set(np.unique(owner[::2, ::2])) == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="multiples"):
        multiscale_groups(12, 8, 3)


def test_multiscale_groups_depend_only_on_earlier_groups():
    model = MultiscalePixelCNN(
        num_scales=2,
        color_channels=3,
        base_features=3,
        base_layers=1,
        features=8,
        num_blocks=1,
        **TINY,
    )
    x = image(8, 8, 3)
    variables = random_variables(model, x)
    groups = multiscale_groups(8, 8, 2)
    # Generation rank of each pixel: raster order inside the base image, then one rank per group.
    rank = np.zeros((8, 8), int)
    base_pixels = 4
    rank[::4, ::4] = np.arange(base_pixels).reshape(2, 2)
    for k, g in enumerate(groups[1:], start=1):
        rank[g.row_offset :: g.stride, g.col_offset :: g.stride] = base_pixels - 1 + k
    outs = model.apply(variables, x)
    projs = [np.random.default_rng(k).normal(size=o.shape[1:]) for k, o in enumerate(outs)]

    def f(x0):
        return [
            (o[0] * p).sum(-1) for o, p in zip(model.apply(variables, x0[None]), projs, strict=True)
        ]

    jacs = jax.jit(jax.jacrev(f))(x[0])
    for k, (g, jac) in enumerate(zip(groups, jacs, strict=True)):
        jac = np.asarray(jac)  # (h, w, C, 8, 8, C)
        assert outs[k].shape == (1, *jac.shape[:3], 4)
        rows = g.row_offset + g.stride * np.arange(jac.shape[0])
        cols = g.col_offset + g.stride * np.arange(jac.shape[1])
        r_out = rank[np.ix_(rows, cols)][:, :, None, None, None, None]
        same = (
            rows[:, None, None, None, None, None] == np.arange(8)[None, None, None, :, None, None]
        ) & (cols[None, :, None, None, None, None] == np.arange(8)[None, None, None, None, :, None])
        c_out = np.arange(3)[None, None, :, None, None, None]
        c_in = np.arange(3)[None, None, None, None, None, :]
        allowed = (rank[None, None, None, :, :, None] < r_out) | (same & (c_in < c_out))
        assert np.count_nonzero(jac[~allowed]) == 0, (k, np.argwhere((jac != 0) & ~allowed)[:3])
        if k > 0:  # the lower-resolution image (group 1 of this scale) is always seen
            low = np.abs(jac).sum(axis=(2, 5))[:, :, :: g.stride, :: g.stride]
            assert np.count_nonzero(low) > low.size // 2


def test_multiscale_sampler_api_matches_teacher_forcing():
    model = MultiscalePixelCNN(
        num_scales=1,
        color_channels=1,
        output="bernoulli",
        base_features=2,
        base_layers=1,
        features=2,
        num_blocks=1,
        output_features=4,
        num_classes=2,
    )
    x, labels = image(4, 4, 1), jnp.array([1])
    variables = random_variables(model, x, labels)
    outs = model.apply(variables, x, labels)
    groups = multiscale_groups(4, 4, 1)
    base = model.apply(
        variables, extract_group(x, groups[0]), labels, method=MultiscalePixelCNN.base_logits
    )
    np.testing.assert_array_equal(base, outs[0])
    for k, g in enumerate(groups[1:], start=1):
        logits = model.apply(
            variables,
            k,
            known_groups(x, g),
            extract_group(x, g),
            labels,
            method=MultiscalePixelCNN.group_logits,
        )
        assert logits.shape == (1, 2, 2, 1)
        np.testing.assert_array_equal(logits, outs[k])
    with pytest.raises(ValueError, match="known must have shape"):
        model.apply(
            variables,
            2,
            extract_group(x, groups[2]),
            extract_group(x, groups[2]),
            labels,
            method=MultiscalePixelCNN.group_logits,
        )


# ---------------------------------------------------------------- shapes and bad input


def _shape(model, *args, **kwargs):
    return jax.eval_shape(
        lambda: model.init_with_output(jax.random.key(0), *args, **kwargs)[0]
    ).shape


def test_output_shapes_at_paper_sizes():
    rgb, grey = jnp.zeros((2, 8, 8, 3)), jnp.zeros((2, 8, 8, 1))
    assert _shape(PixelCNN(6, 1, color_channels=3), rgb) == (2, 8, 8, 3, 256)
    assert _shape(PixelCNN(4, 1, output="bernoulli"), grey) == (2, 8, 8, 1)
    assert _shape(GatedPixelCNN(6, 2, color_channels=3), rgb) == (2, 8, 8, 3, 256)
    assert _shape(PixelRNN("row_lstm", 6, 1, color_channels=3), rgb) == (2, 8, 8, 3, 256)
    assert _shape(PixelRNN("diagonal_bilstm", 4, 1, output="bernoulli"), grey) == (2, 8, 8, 1)
    assert _shape(PixelCNNPlusPlus(8, 1, num_mixtures=5), rgb) == (2, 8, 8, 50)
    assert _shape(PixelCNNPlusPlus(8, 1, num_mixtures=5), grey) == (2, 8, 8, 15)
    outs = jax.eval_shape(
        lambda: MultiscalePixelCNN(2, 3, base_layers=1).init_with_output(jax.random.key(0), rgb)[0]
    )
    assert [o.shape for o in outs] == [(2, 2, 2, 3, 256)] + [(2, 2, 2, 3, 256)] * 3 + [
        (2, 4, 4, 3, 256)
    ] * 3


@pytest.mark.parametrize(
    "model, x, match",
    [
        (PixelCNN(4, 1), jnp.zeros((8, 8, 1)), "x must be a"),
        (PixelCNN(4, 1), jnp.zeros((1, 8, 8, 1), jnp.int32), "floating"),
        (PixelCNN(6, 1, color_channels=3), jnp.zeros((1, 8, 8, 1)), "3 channels"),
        (PixelCNN(4, 1, output="gaussian"), jnp.zeros((1, 8, 8, 1)), "output="),
        (PixelCNN(2, 1, color_channels=3), jnp.zeros((1, 8, 8, 3)), "at least color_channels"),
        (PixelRNN("grid_lstm", 4, 1), jnp.zeros((1, 8, 8, 1)), "layer="),
        (GatedPixelCNN(4, 1, num_classes=3), jnp.zeros((1, 8, 8, 1)), "labels"),
        (PixelCNNPlusPlus(4, 1), jnp.zeros((1, 6, 8, 3)), "multiples of 4"),
        (PixelCNNPlusPlus(4, 1), jnp.zeros((1, 8, 8, 2)), "1 \\(grey\\) or 3"),
        (MultiscalePixelCNN(3, base_layers=1), jnp.zeros((1, 12, 12, 1)), "multiples of 2"),
    ],
)
def test_bad_input_raises_value_error(model, x, match):
    with pytest.raises(ValueError, match=match):
        jax.eval_shape(lambda: model.init(jax.random.key(0), x))


# ---------------------------------------------------------------- mixed precision (bfloat16)


def _equations(jaxpr):
    """Every equation of ``jaxpr`` and of the jaxprs nested in it (scan bodies, pjit calls)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                inner = getattr(sub, "jaxpr", sub)  # ClosedJaxpr -> Jaxpr
                if hasattr(inner, "eqns"):
                    yield from _equations(inner)


_BF16_MODELS = {
    "pixelcnn": (PixelCNN(6, 1, color_channels=3, **TINY), (image(4, 4, 3),)),
    "gated": (
        GatedPixelCNN(6, 1, color_channels=3, num_classes=2, **TINY),
        (image(4, 4, 3), jnp.array([1])),
    ),
    "row_lstm": (PixelRNN("row_lstm", 3, 1, color_channels=3, **TINY), (image(4, 4, 3),)),
    "diagonal_bilstm": (PixelRNN("diagonal_bilstm", 3, 1, **TINY), (image(4, 4, 1),)),
    "pixelcnnpp": (
        PixelCNNPlusPlus(4, 1, num_mixtures=2, num_classes=2),  # weight-normalized
        (image(4, 4, 3), jnp.array([0])),
    ),
    "multiscale": (
        MultiscalePixelCNN(1, 3, base_features=3, base_layers=1, features=4, num_classes=2, **TINY),
        (image(4, 4, 3), jnp.array([1])),
    ),
}


@pytest.mark.parametrize("name", sorted(_BF16_MODELS))
def test_bfloat16_modules_compute_in_bfloat16_with_float32_params_and_outputs(name):
    """``dtype=bfloat16``: every convolution and matmul reads bfloat16 operands, the parameter
    tree is the float32 one, and the outputs (logits, mixture parameters) are float32."""
    model32, args = _BF16_MODELS[name]
    model16 = model32.clone(dtype=jnp.bfloat16)
    params32 = jax.eval_shape(model32.init, jax.random.key(0), *args)
    params16 = jax.eval_shape(model16.init, jax.random.key(0), *args)
    assert jax.tree.structure(params32) == jax.tree.structure(params16)
    for a, b in zip(jax.tree.leaves(params32), jax.tree.leaves(params16), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype == jnp.float32
    variables = random_variables(model32, *args)
    ops = ("conv_general_dilated", "dot_general")
    counts = []
    for model, dtype in ((model32, jnp.float32), (model16, jnp.bfloat16)):
        closed = jax.make_jaxpr(model.apply)(variables, *args)
        operands = [
            v.aval.dtype
            for e in _equations(closed.jaxpr)
            if e.primitive.name in ops
            for v in e.invars
        ]
        assert set(operands) == {jnp.dtype(dtype)}, (name, dtype, set(operands))
        counts.append(len(operands))
        assert {o.dtype for o in closed.out_avals} == {jnp.dtype(jnp.float32)}
    assert counts[0] == counts[1] > 0  # the same convolutions, only in another dtype
    out32 = jax.tree.leaves(jax.jit(model32.apply)(variables, *args))
    out16 = jax.tree.leaves(jax.jit(model16.apply)(variables, *args))
    for a, b in zip(out32, out16, strict=True):
        assert b.dtype == jnp.float32 and np.all(np.isfinite(b)) and not np.array_equal(a, b)


@pytest.mark.parametrize(
    "model",
    [
        PixelCNN(10, 1, color_channels=3, dtype=jnp.bfloat16, **TINY),
        GatedPixelCNN(10, 2, color_channels=3, dtype=jnp.bfloat16, **TINY),
        PixelRNN("row_lstm", hidden=5, num_layers=1, color_channels=3, dtype=jnp.bfloat16, **TINY),
    ],
    ids=["pixelcnn", "gated", "row_lstm"],
)
def test_bfloat16_masks_stay_exact_and_models_stay_autoregressive(model):
    """Masked float32 kernels cast to bfloat16 keep their exact zeros: causality is unchanged."""
    x = image(5, 5, 3)
    jac = sub_pixel_jacobian(model, random_variables(model, x), x)
    assert_causal(jac, raster_forbidden(5, 5, 3))


def test_lstm_cell_state_accumulates_in_float32_with_bfloat16_gates():
    rng = np.random.default_rng(3)
    pre = jnp.asarray(rng.normal(size=(2, 3, 8)), jnp.bfloat16)
    c_prev = jnp.asarray(rng.normal(size=(2, 3, 2)), jnp.float32)
    c, h = _lstm_update(pre, c_prev)
    assert c.dtype == jnp.float32 and h.dtype == jnp.bfloat16
    o, f, i, g = np.split(np.asarray(pre.astype(jnp.float32), np.float64), 4, axis=-1)
    sig = special.expit
    # bfloat16 rounds to 8 significant bits (relative error <= u = 2^-8). sigmoid(f), and
    # sigmoid(i) tanh(g) (three roundings) are bfloat16; f c' and the sum are float32 (~1e-7).
    # So the cell state is within (1 + u)^3 (1 + 2^-22) - 1 < 3.1 u of the exact update of the
    # same inputs, relative to the magnitude of its two terms.
    terms = np.abs(sig(f) * np.asarray(c_prev)) + np.abs(sig(i) * np.tanh(g))
    expected = sig(f) * np.asarray(c_prev) + sig(i) * np.tanh(g)
    assert np.all(np.abs(np.asarray(c) - expected) <= 3.1 * 2.0**-8 * terms)
    # With float32 inputs the update is Eq. 3 in float32, as before mixed precision.
    pre32 = pre.astype(jnp.float32)
    c32, h32 = _lstm_update(pre32, c_prev)
    o, f, i, g = jnp.split(pre32, 4, axis=-1)
    c_ref = jax.nn.sigmoid(f) * c_prev + jax.nn.sigmoid(i) * jnp.tanh(g)
    np.testing.assert_array_equal(c32, c_ref)
    np.testing.assert_array_equal(h32, jax.nn.sigmoid(o) * jnp.tanh(c_ref))
