"""genjax.models.convolution: every formulation against ``lax``, and the modules against Flax's.

Each rewrite is forced on small inputs (the thresholds of the dispatch rules are set to 0 or
raised) and compared with ``lax.conv_general_dilated`` / ``lax.conv_transpose``: the value and
the gradients with respect to the input and the kernel for a random output cotangent, plus
forward mode, second order and ``vmap``. The dispatch rules themselves are checked on the real
shapes of the genjax models (:func:`conv.cpu_formulation`, no computation).

Tolerances. float32: rtol 1e-5 and atol 1e-5 * max|reference|. The rewrites sum the same
products in another order (shifted-gradient matmuls, phases), so each output differs from lax's by a
few float32 roundings of the *terms* it adds up, not of the result: an output that is small
because its terms cancel carries an absolute error of the order of eps * (the size of the
terms), which is bounded by the largest outputs. With at most a few thousand terms per output
here, both errors stay below 1e-6 relative (observed: < 1e-6). bfloat16: see
``test_bfloat16_inputs``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from genjax.models import convolution as conv

DN = conv.DIMENSION_NUMBERS


def _rand(shape, seed, scale=1.0):
    return jnp.asarray(scale * np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def assert_close(actual, expected, rtol=1e-5, err_msg=""):
    expected = np.asarray(expected, np.float64)
    atol = rtol * float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=rtol, atol=atol,
                               err_msg=err_msg)


def _value_and_grads(fn):
    @jax.jit
    def run(x, k, g):
        y, vjp = jax.vjp(fn, x, k)
        return (y, *vjp(g))

    return run


def _compare(fn, ref, x, k, seed=9):
    out_shape = jax.eval_shape(ref, x, k).shape
    g = _rand(out_shape, seed)
    got, want = _value_and_grads(fn)(x, k, g), _value_and_grads(ref)(x, k, g)
    assert got[0].shape == want[0].shape and got[0].dtype == want[0].dtype
    for name, a, b in zip(("value", "d/dx", "d/dkernel"), got, want, strict=True):
        assert_close(a, b, err_msg=name)


def _pixelcnn_mask(kernel_hw, c_in, c_out, mask_type, groups=1):
    """Raster-order mask (PixelCNN): rows above, left of the centre, and at the centre the
    colour groups before (type A) or up to (type B) the output's, channels split in ``groups``."""
    kh, kw = kernel_hw
    m = np.zeros((kh, kw, c_in, c_out), np.float32)
    m[: kh // 2] = 1
    m[kh // 2, : kw // 2] = 1
    g_in = np.arange(c_in) * groups // c_in
    g_out = np.arange(c_out) * groups // c_out
    allowed = g_in[:, None] < g_out[None, :] if mask_type == "A" else g_in[:, None] <= g_out
    m[kh // 2, kw // 2] = allowed
    return m


@pytest.fixture
def shifted_everywhere(monkeypatch):
    """Every stride-1 convolution with a kernel > 1x1 takes the shifted gradients."""
    monkeypatch.setattr(conv, "_MIN_IN_FEATURES", 0)
    monkeypatch.setattr(conv, "_MIN_OUT_FEATURES", 0)


# (name, batch, (H, W), (C_in, C_out), (kh, kw), strides, padding, mask type or None): the
# convolutions of the genjax models with small batches and channels, then odd cases.
P1 = ((1, 1), (1, 1))
CONV_CASES = [
    ("pixelcnn input 7x7 A, C_in 1", 2, (12, 12), (1, 8), (7, 7), 1, "SAME", "A"),
    ("pixelcnn 1x1", 2, (9, 9), (8, 4), (1, 1), 1, "SAME", "B"),
    ("pixelcnn block 3x3 B", 2, (9, 9), (6, 6), (3, 3), 1, "SAME", "B"),
    ("gated vertical 4x7", 2, (9, 9), (1, 8), (4, 7), 1, ((3, 0), (3, 3)), None),
    ("gated vertical 2x3", 2, (9, 9), (4, 8), (2, 3), 1, ((1, 0), (1, 1)), None),
    ("gated horizontal 1x7 A", 2, (9, 9), (1, 8), (1, 7), 1, "SAME", "A"),
    ("gated horizontal 1x3 B, batch 1", 1, (9, 9), (4, 8), (1, 3), 1, "SAME", "B"),
    ("dcgan/vae D 4x4 s2 SAME, odd W", 3, (14, 13), (4, 8), (4, 4), 2, "SAME", None),
    ("classifier/realnvp 3x3 SAME, odd H W", 2, (9, 7), (4, 8), (3, 3), 1, "SAME", None),
    ("vae output 3x3 to C_out 1", 2, (8, 8), (4, 1), (3, 3), 1, "SAME", None),
    ("cyclegan 3x3 VALID", 2, (9, 9), (8, 8), (3, 3), 1, "VALID", None),
    ("cyclegan 7x7 VALID", 2, (14, 14), (3, 4), (7, 7), 1, "VALID", None),
    ("cyclegan 3x3 s2 pad 1", 2, (14, 14), (4, 8), (3, 3), 2, P1, None),
    ("patchgan 4x4 s2 pad 1", 2, (14, 14), (3, 4), (4, 4), 2, P1, None),
    ("patchgan 4x4 s1 pad 1", 2, (7, 7), (4, 1), (4, 4), 1, P1, None),
    ("stargan 7x7 pad 3", 2, (12, 12), (5, 4), (7, 7), 1, ((3, 3), (3, 3)), None),
    ("stargan whole-map head", 3, (7, 7), (8, 4), (7, 7), 1, "VALID", None),
    ("pixelcnnpp 2x3 VALID", 2, (9, 10), (4, 4), (2, 3), 1, "VALID", None),
    ("pixelcnnpp 2x3 s2 VALID", 2, (9, 10), (4, 4), (2, 3), 2, "VALID", None),
    ("1x1 strided with pads", 2, (9, 8), (3, 4), (1, 1), 2, ((1, 0), (2, 1)), None),
    ("asymmetric and negative pads", 2, (9, 9), (3, 4), (3, 2), 1, ((2, -1), (0, 3)), None),
    ("padded whole-map kernel", 2, (5, 4), (3, 2), (7, 6), 1, P1, None),
    ("stride 3", 2, (11, 10), (2, 3), (3, 3), 3, "SAME", None),
]


def _conv_params(cases, transpose):
    """Each case under the dispatch rules, and again with shifted gradients/phases forced where the rules
    chose lax (the forced runs lower the thresholds to 0)."""
    params = []
    for case in cases:
        b, hw, (c, o), khw, s, padding = case[1:7]
        mask_type = None if transpose else case[7]
        mask = None if mask_type is None else _pixelcnn_mask(khw, c, o, mask_type)
        plan = conv.cpu_formulation((b, *hw, c), (*khw, c, o), strides=s, padding=padding,
                                    mask=mask, transpose=transpose)
        params.append(pytest.param(case, False, id=f"{case[0]} [{plan}]"))
        if plan == "lax" and (transpose or s == 1):  # strided convolutions are always lax
            params.append(pytest.param(case, True, id=f"{case[0]} [forced]"))
    return params


@pytest.mark.parametrize("chunk_rows", [2, 3])
def test_shifted_gradients_in_batch_chunks_match_lax(chunk_rows, shifted_everywhere, monkeypatch):
    """A batch cut into strided chunks (rows i, i + b/chunk, ...) scanned one after another,
    as when the output gradient's shifted copies for a whole batch exceed ``_CHUNK_BYTES``:
    values and gradients of every row equal lax's."""
    b, hw, c, o = 6, (9, 9), 4, 8
    per_example = 9 * o * hw[0] * hw[1] * 4  # taps * C_out copies, at float32
    monkeypatch.setattr(conv, "_CHUNK_BYTES", chunk_rows * per_example)
    assert conv._batch_chunk(b, per_example) == chunk_rows
    x, k = _rand((b, *hw, c), 0), _rand((3, 3, c, o), 1, 0.3)
    _compare(
        lambda x, k: conv.conv2d(x, k, strides=1, padding="SAME", formulation="cpu"),
        lambda x, k: lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=DN),
        x, k)


@pytest.mark.parametrize("case, forced", _conv_params(CONV_CASES, transpose=False))
def test_conv2d_matches_lax(case, forced, request):
    if forced:
        request.getfixturevalue("shifted_everywhere")
    _, b, hw, (c, o), khw, s, padding, mask_type = case
    mask = None if mask_type is None else _pixelcnn_mask(khw, c, o, mask_type)
    x, k = _rand((b, *hw, c), 0), _rand((*khw, c, o), 1, 0.3)
    ref_k = (lambda k: k) if mask is None else (lambda k: k * mask)
    _compare(
        lambda x, k: conv.conv2d(x, k, strides=s, padding=padding, mask=mask, formulation="cpu"),
        lambda x, k: lax.conv_general_dilated(x, ref_k(k), (s, s), padding, dimension_numbers=DN),
        x, k)


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_colour_groups(mask_type, shifted_everywhere):
    """Three colour groups: the centre tap is partly masked and cannot be skipped."""
    mask = _pixelcnn_mask((3, 3), 6, 9, mask_type, groups=3)
    x, k = _rand((2, 8, 8, 6), 0), _rand((3, 3, 6, 9), 1, 0.3)
    _compare(lambda x, k: conv.conv2d(x, k, mask=mask, formulation="cpu"),
             lambda x, k: lax.conv_general_dilated(x, k * mask, (1, 1), "SAME",
                                                   dimension_numbers=DN), x, k)
    # A kernel already multiplied by the mask gives the same result.
    y1 = conv.conv2d(x, k * mask, mask=mask, formulation="cpu")
    np.testing.assert_array_equal(y1, conv.conv2d(x, k, mask=mask, formulation="cpu"))


TRANSPOSE_CASES = [
    ("dcgan/vae/stargan 4x4 s2 SAME, odd W", 2, (7, 6), (8, 4), (4, 4), 2, "SAME"),
    ("dcgan last 4x4 s2 SAME to C_out 1", 2, (7, 7), (8, 1), (4, 4), 2, "SAME"),
    ("cyclegan 3x3 s2 SAME", 2, (7, 7), (8, 4), (3, 3), 2, "SAME"),
    ("pixelcnnpp 2x3 s2 VALID", 2, (6, 7), (4, 4), (2, 3), 2, "VALID"),
    ("pixelcnnpp 2x2 s2 VALID, batch 1", 1, (6, 6), (4, 4), (2, 2), 2, "VALID"),
    ("4x4 s2 VALID, C_in 1", 2, (5, 5), (1, 4), (4, 4), 2, "VALID"),
    ("explicit pads", 2, (5, 4), (2, 4), (3, 3), 2, ((1, 2), (0, 1))),
    ("stride 1", 2, (6, 6), (2, 4), (3, 3), 1, "SAME"),
    ("stride 3", 2, (4, 4), (2, 4), (5, 5), 3, "SAME"),
    ("1x1 s2", 2, (4, 4), (3, 4), (1, 1), 2, "SAME"),
]


@pytest.mark.parametrize("case, forced", _conv_params(TRANSPOSE_CASES, transpose=True))
def test_conv_transpose2d_matches_lax(case, forced, request):
    if forced:
        request.getfixturevalue("shifted_everywhere")
    _, b, hw, (c, o), khw, s, padding = case
    x, k = _rand((b, *hw, c), 0), _rand((*khw, c, o), 1, 0.3)
    _compare(
        lambda x, k: conv.conv_transpose2d(x, k, strides=s, padding=padding, formulation="cpu"),
        lambda x, k: lax.conv_transpose(x, k, (s, s), padding, dimension_numbers=DN), x, k)


def test_auto_and_lax_formulations():
    """On the CPU "auto" is the CPU formulation; "lax" is lax itself, bit for bit."""
    x, k = _rand((2, 7, 7, 8), 0), _rand((4, 4, 8, 4), 1, 0.3)
    for fn in (conv.conv2d, conv.conv_transpose2d):
        _compare(lambda x, k, fn=fn: fn(x, k, strides=2, formulation="auto"),
                 lambda x, k, fn=fn: fn(x, k, strides=2, formulation="cpu"), x, k)
    np.testing.assert_array_equal(
        conv.conv_transpose2d(x, k, strides=2, formulation="lax"),
        lax.conv_transpose(x, k, (2, 2), "SAME", dimension_numbers=DN))
    np.testing.assert_array_equal(
        conv.conv2d(x, k, strides=2, formulation="lax"),
        lax.conv_general_dilated(x, k, (2, 2), "SAME", dimension_numbers=DN))


@pytest.mark.parametrize("platform", ["cuda", "tpu"])
def test_other_platforms_lower_plain_lax(platform):
    """platform_dependent keeps only lax's program for GPU/TPU: the transposed convolution stays
    an input-dilated convolution and nothing of the CPU formulation (loops, dots) is left."""
    x, k = _rand((2, 7, 7, 8), 0), _rand((4, 4, 8, 4), 1)

    def step(x, k):
        loss = lambda x, k: jnp.sum(conv.conv_transpose2d(x, k, strides=2) ** 2)
        return jax.grad(loss, (0, 1))(x, k)

    text = jax.export.export(jax.jit(step), platforms=[platform])(x, k).mlir_module()
    assert "lhs_dilate" in text and "stablehlo.while" not in text
    assert "stablehlo.dot_general" not in text
    cpu_text = jax.export.export(jax.jit(step), platforms=["cpu"])(x, k).mlir_module()
    assert "lhs_dilate" not in cpu_text and "stablehlo.dot_general" in cpu_text


def test_default_formulation_sets_what_auto_means_while_tracing():
    """Inside ``default_formulation("cpu")`` a GPU program holds the CPU formulation, inside
    ``("lax")`` a CPU program holds lax's; afterwards "auto" is back to the platform's own."""
    x, k = _rand((2, 7, 7, 8), 0), _rand((4, 4, 8, 4), 1)

    def text(platform):
        step = jax.jit(lambda x, k: jax.grad(
            lambda x, k: jnp.sum(conv.conv_transpose2d(x, k, strides=2) ** 2), (0, 1))(x, k))
        return jax.export.export(step, platforms=[platform])(x, k).mlir_module()

    with conv.default_formulation("cpu"):
        gpu = text("cuda")
    assert "lhs_dilate" not in gpu and "stablehlo.dot_general" in gpu
    with conv.default_formulation("lax"):
        cpu = text("cpu")
        with conv.default_formulation("auto"):  # nested: restored on leaving
            assert "lhs_dilate" not in text("cpu")
        assert "lhs_dilate" in text("cpu")
    assert "lhs_dilate" in cpu and "stablehlo.dot_general" not in cpu
    assert "lhs_dilate" not in text("cpu") and "lhs_dilate" in text("cuda")
    with pytest.raises(ValueError, match="formulation must be one of"):
        with conv.default_formulation("gpu"):
            pass


@pytest.mark.parametrize("transpose", [False, True], ids=["conv", "conv_transpose"])
def test_other_transformations(transpose, shifted_everywhere):
    """A gradient penalty (d/dk of |d/dx|^2), a Hessian-vector product in the kernel (reverse
    over reverse) and per-example gradients (vmap); forward mode is refused (custom VJP)."""
    x, k = _rand((3, 8, 8, 4), 0), _rand((3, 3, 4, 5), 1, 0.3)
    if transpose:
        mine = lambda x, k: conv.conv_transpose2d(x, k, strides=2, formulation="cpu")
        ref = lambda x, k: lax.conv_transpose(x, k, (2, 2), "SAME", dimension_numbers=DN)
    else:
        mine = lambda x, k: conv.conv2d(x, k, formulation="cpu")
        ref = lambda x, k: lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=DN)
    v = _rand(k.shape, 2)
    xd = _rand(x.shape, 3)

    def transforms(f):
        loss = lambda x, k: jnp.sum(jnp.tanh(f(x, k)) ** 2)
        penalty = lambda k: jnp.sum(jax.grad(loss)(x, k) ** 2)
        return {
            "penalty grad": jax.grad(penalty)(k),
            "hvp rev-over-rev": jax.grad(lambda k: jnp.vdot(jax.grad(loss, 1)(x, k), v))(k),
            "vmap grads": jax.vmap(lambda xi: jax.grad(loss, 1)(xi[None], k))(x),
            "input-kernel cross term": jax.grad(
                lambda x: jnp.vdot(jax.grad(loss, 1)(x, k), v))(x),
        }

    got, want = jax.jit(lambda: transforms(mine))(), jax.jit(lambda: transforms(ref))()
    for name in want:
        assert_close(got[name], want[name], err_msg=name)
    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(mine, (x, k), (xd, v))


def _cpu_program(fn, *args) -> str:
    """The program XLA:CPU compiles for ``jax.jit(fn)(*args)``, whatever the default backend.

    The layouts checked below are XLA:CPU's (the "cpu" formulation exists for it); on a GPU the
    default backend would compile cuDNN custom calls instead, with no ``convolution`` to read
    (seen on an H200: the layout assertions then saw an empty list).
    """
    cpu = jax.devices("cpu")[0]
    return jax.jit(fn).lower(*(jax.device_put(a, cpu) for a in args)).compile().as_text()


# Every convolution XLA:CPU compiles for a training step must be in the canonical layout
# (batch, spatial, feature) x (spatial, in, out): inside a loop body (steps_per_dispatch's
# device loop) XLA does not canonicalize, and a non-canonical kernel gradient runs in a naive
# loop (17.8 s instead of 0.26 s for a 3x3 64->64 conv at 28x28, batch 64).
@pytest.mark.parametrize("kind", ["stride1", "stride2", "transpose_phase", "transpose_lax",
                                  "small_in"])
def test_gradients_inside_a_loop_are_canonical_and_exact(kind):
    shapes = {"stride1": ((2, 6, 6, 8), (3, 3, 8, 8), 1), "stride2": ((2, 8, 8, 4), (4, 4, 4, 8), 2),
              "transpose_phase": ((2, 4, 4, 8), (4, 4, 8, 8), 2),
              "transpose_lax": ((2, 4, 4, 8), (4, 4, 8, 1), 2),
              "small_in": ((2, 8, 8, 1), (7, 7, 1, 8), 1)}
    xs, ks, stride = shapes[kind]
    x, k = _rand(xs, 0), _rand(ks, 1, 0.3)
    if kind.startswith("transpose"):
        f = lambda x, k: conv.conv_transpose2d(x, k, strides=stride, formulation="cpu")
        ref = lambda x, k: lax.conv_transpose(x, k, (stride, stride), "SAME",
                                              dimension_numbers=DN)
    else:
        f = lambda x, k: conv.conv2d(x, k, strides=stride, formulation="cpu")
        ref = lambda x, k: lax.conv_general_dilated(x, k, (stride, stride), "SAME",
                                                    dimension_numbers=DN)
    grad = jax.grad(lambda x, k: jnp.sum(jnp.sin(f(x, k))), (0, 1))

    def looped(x, k, n):
        return lax.fori_loop(0, n, lambda i, c: grad(x, k), grad(x, k))

    compiled = _cpu_program(looped, x, k, np.int32(1))
    labels = [line.split("dim_labels=")[1].split(",")[0] for line in compiled.splitlines()
              if " convolution(" in line]
    assert labels and set(labels) == {"b01f_01io->b01f"}, labels
    got = jax.jit(looped)(x, k, np.int32(1))
    want = jax.grad(lambda x, k: jnp.sum(jnp.sin(ref(x, k))), (0, 1))(x, k)
    for a, b in zip(got, want, strict=True):
        assert_close(a, b)


def test_gradient_penalty_inside_a_loop_matches_lax():
    """WGAN-GP differentiates the critic's input gradient again, inside the dispatch loop.

    The custom VJPs are closed under differentiation (the input gradient is a canonical
    convolution, the kernel gradient has its own canonical VJP), so the second-order program
    matches lax's and keeps XLA:CPU's fast layouts: before, JAX's own transposes of the backward
    convolutions made a 64-128-channel critic's penalty 3.8x slower in a loop than outside it.
    XLA itself folds one reversal into a kernel gradient of a strided layer
    ("01fb_o01i->f01b", measured as fast in the loop as outside); no other layout may appear.
    """
    x = _rand((2, 8, 8, 4), 0)
    k1, k2 = _rand((4, 4, 4, 8), 1, 0.3), _rand((3, 3, 8, 8), 2, 0.3)

    def penalty_grad(conv_fn):
        def critic(k1, k2, x):
            return jnp.sum(jnp.sin(conv_fn(jnp.tanh(conv_fn(x, k1, 2)), k2, 1)))

        def penalty(k1, k2, x):
            g = jax.grad(critic, 2)(k1, k2, x)
            return jnp.sum((jnp.sqrt(jnp.sum(g**2)) - 1.0) ** 2)

        return jax.grad(penalty, (0, 1))

    mine = penalty_grad(lambda x, k, s: conv.conv2d(x, k, strides=s, formulation="cpu"))
    ref = penalty_grad(lambda x, k, s: lax.conv_general_dilated(x, k, (s, s), "SAME",
                                                                dimension_numbers=DN))

    def looped(k1, k2, x, n):
        return lax.fori_loop(0, n, lambda i, c: mine(k1, k2, x), mine(k1, k2, x))

    compiled = _cpu_program(looped, k1, k2, x, np.int32(1))
    labels = {line.split("dim_labels=")[1].split(",")[0] for line in compiled.splitlines()
              if " convolution(" in line}
    assert "b01f_01io->b01f" in labels and labels <= {"b01f_01io->b01f", "01fb_o01i->f01b"}, labels
    got = jax.jit(looped)(k1, k2, x, np.int32(1))
    for a, b in zip(got, ref(k1, k2, x), strict=True):
        assert_close(a, b)


@pytest.mark.parametrize("transpose", [False, True], ids=["conv", "conv_transpose"])
def test_bfloat16_inputs(transpose, shifted_everywhere):
    """bfloat16 in, bfloat16 out, close to float32 on the same (bfloat16-rounded) inputs.

    Tolerance: rounding the output to bfloat16 (8-bit mantissa) costs up to 2^-9 of its value,
    and lax/XLA may round partial sums to bfloat16 as well. 2^-7 of the largest output
    (four half-ulps of it) allows that, and is 1000x looser than float32 agreement only because
    of bfloat16's 8 bits.
    """
    x = _rand((2, 8, 8, 8), 0).astype(jnp.bfloat16)
    k = _rand((3, 3, 8, 8), 1, 0.3).astype(jnp.bfloat16)
    if transpose:
        fn = lambda x, k: conv.conv_transpose2d(x, k, strides=2, formulation="cpu")
        ref = lambda x, k: lax.conv_transpose(x, k, (2, 2), "SAME", dimension_numbers=DN)
    else:
        fn = lambda x, k: conv.conv2d(x, k, formulation="cpu")
        ref = lambda x, k: lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=DN)
    g = _rand(jax.eval_shape(ref, x, k).shape, 2).astype(jnp.bfloat16)
    got = _value_and_grads(fn)(x, k, g)
    want = _value_and_grads(ref)(*(a.astype(jnp.float32) for a in (x, k, g)))
    for name, a, b in zip(("value", "d/dx", "d/dkernel"), got, want, strict=True):
        assert a.dtype == jnp.bfloat16, name
        assert_close(a.astype(jnp.float32), b, rtol=2.0**-7, err_msg=name)


# Modules against Flax -------------------------------------------------------------------------

MODULE_CASES = [  # one kernel shape (3, 3, 3, 4) where the case is about something else
    dict(features=4, kernel_size=(3, 3)),
    dict(features=4, kernel_size=(3, 3), strides=(2, 2), padding="SAME", use_bias=False),
    dict(features=4, kernel_size=(3, 3), strides=2, padding=((1, 1), (1, 1))),
    dict(features=4, kernel_size=(3, 3), padding=1, name="named"),
    dict(features=4, kernel_size=(3, 3), padding=[(1, 0), 1]),
    dict(features=4, kernel_size=(3, 3), padding="VALID"),
    dict(features=4, kernel_size=(3, 3), padding="REFLECT"),
    dict(features=4, kernel_size=(4, 3), padding="CIRCULAR"),
    dict(features=4, kernel_size=(3, 3), kernel_init=nn.initializers.normal(0.1),
         bias_init=nn.initializers.constant(0.5)),
    dict(features=4, kernel_size=(3, 3), dtype=jnp.bfloat16),
    dict(features=4, kernel_size=(3, 3), param_dtype=jnp.bfloat16),
    dict(features=4, kernel_size=(7, 7), padding="VALID"),  # the whole map: a contraction
]


def _same_variables(a, b):
    fa, fb = jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves_with_path(b)
    assert [p for p, _ in fa] == [p for p, _ in fb]
    for (path, x), (_, y) in zip(fa, fb, strict=True):
        assert x.shape == y.shape and x.dtype == y.dtype, path
        np.testing.assert_array_equal(x, y, err_msg=str(path))


TRANSPOSE_MODULE_CASES = [  # one kernel shape (4, 4, 3, 4) where the case is about something else
    dict(features=4, kernel_size=(4, 4), strides=(2, 2), padding="SAME", use_bias=False),
    dict(features=1, kernel_size=(4, 4), strides=2, padding="SAME"),
    dict(features=4, kernel_size=(4, 4), strides=(2, 2), padding="VALID", name="conv"),
    dict(features=4, kernel_size=(4, 4), strides=2, padding=((1, 2), (0, 1))),
    dict(features=4, kernel_size=(4, 4)),
    dict(features=4, kernel_size=(4, 4), strides=2, dtype=jnp.bfloat16),
]


@pytest.mark.parametrize("ours, theirs, x_shape, kwargs", [
    *[(conv.Conv, nn.Conv, (2, 7, 7, 3), k) for k in MODULE_CASES],
    *[(conv.ConvTranspose, nn.ConvTranspose, (2, 5, 6, 3), k) for k in TRANSPOSE_MODULE_CASES],
])
def test_module_matches_flax(ours, theirs, x_shape, kwargs):
    """Same parameters from the same key, same output shape, dtype and values as Flax's."""
    x = _rand(x_shape, 0)
    ours, theirs = ours(**kwargs), theirs(**kwargs)
    key = jax.random.key(3)
    variables = theirs.init(key, x)
    _same_variables(ours.init(key, x), variables)
    y, y_ref = ours.apply(variables, x), theirs.apply(variables, x)
    assert y.dtype == y_ref.dtype and y.shape == y_ref.shape
    rtol = 2.0**-7 if y.dtype == jnp.bfloat16 else 1e-5
    assert_close(y.astype(jnp.float32), y_ref.astype(jnp.float32), rtol=rtol)


def test_modules_in_a_model():
    """Extra batch axes, an unbatched input, a mask and weight normalization, as Flax does."""
    x = _rand((2, 3, 6, 6, 2), 0)
    mask = _pixelcnn_mask((3, 3), 2, 4, "B")
    for inputs, ours, theirs in [
        (x, conv.Conv(4, (3, 3), mask=mask), nn.Conv(4, (3, 3), mask=jnp.asarray(mask))),
        (x[0, 0], conv.Conv(4, (3, 3)), nn.Conv(4, (3, 3))),
        (x[0], nn.WeightNorm(conv.Conv(4, (3, 3))), nn.WeightNorm(nn.Conv(4, (3, 3)))),
        (x[0, 0], conv.ConvTranspose(4, (3, 3), strides=2), nn.ConvTranspose(4, (3, 3), strides=2)),
    ]:
        variables = theirs.init(jax.random.key(0), inputs)
        _same_variables(ours.init(jax.random.key(0), inputs), variables)
        assert_close(ours.apply(variables, inputs), theirs.apply(variables, inputs))


# Dispatch rules and errors --------------------------------------------------------------------


@pytest.mark.parametrize("shapes, kwargs, expected", [
    (((64, 28, 28, 128), (1, 1, 128, 64)), {}, "contraction"),  # PixelCNN 1x1
    (((64, 28, 28, 64), (3, 3, 64, 64)), {"mask": _pixelcnn_mask((3, 3), 64, 64, "B")},
     "shifted gradients"),  # PixelCNN block: 5 of 9 taps
    (((64, 28, 28, 1), (7, 7, 1, 128)), {"mask": _pixelcnn_mask((7, 7), 1, 128, "A")},
     "lax"),  # PixelCNN input: one input channel
    (((64, 28, 28, 64), (3, 3, 64, 64)), {}, "shifted gradients"),  # Real NVP
    (((128, 14, 14, 64), (4, 4, 64, 128)), {"strides": 2}, "lax"),  # DCGAN D
    (((100, 28, 28, 32), (3, 3, 32, 1)), {}, "lax"),  # VAE output layer
    (((16, 9, 9, 128), (3, 3, 128, 128)), {"padding": "VALID"},
     "shifted gradients"),  # CycleGAN residual block
    (((80, 7, 7, 64), (7, 7, 64, 4)), {"padding": "VALID"}, "contraction"),  # StarGAN head
    (((128, 7, 7, 128), (4, 4, 128, 64)), {"strides": 2, "transpose": True},
     "phase decomposition"),  # DCGAN G
    # DCGAN's last G layer: phases even to 1 channel (lax's gradient is not loop-safe).
    (((128, 14, 14, 64), (4, 4, 64, 1)), {"strides": 2, "transpose": True},
     "phase decomposition"),
])
def test_cpu_formulation_rules(shapes, kwargs, expected):
    assert conv.cpu_formulation(*shapes, **kwargs) == expected


def test_errors():
    x, k = jnp.zeros((1, 5, 5, 2)), jnp.zeros((3, 3, 2, 4))
    with pytest.raises(ValueError, match="padding must be"):
        conv.conv2d(x, k, padding="FULL")
    with pytest.raises(ValueError, match="strides must be two positive ints"):
        conv.conv2d(x, k, strides=(1, 0))
    with pytest.raises(ValueError, match=r"kernel.shape\[2\].*must equal x.shape\[3\] = 2"):
        conv.conv2d(x, jnp.zeros((3, 3, 3, 4)))
    with pytest.raises(ValueError, match="x must be a"):
        conv.conv2d(x[0], k)
    with pytest.raises(TypeError, match="same dtype"):
        conv.conv2d(x, k.astype(jnp.bfloat16))
    with pytest.raises(ValueError, match="formulation must be one of"):
        conv.conv_transpose2d(x, k, strides=2, formulation="gpu")
    with pytest.raises(ValueError, match="mask must contain only 0s and 1s"):
        conv.conv2d(x, k, mask=np.full(k.shape, 0.5))
    with pytest.raises(ValueError, match="mask must broadcast"):
        conv.conv2d(x, k, mask=np.ones((2, 2)))
    with pytest.raises(ValueError, match="kernel_size must be"):
        conv.Conv(4, 3).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="padding must be one of"):
        conv.ConvTranspose(4, (3, 3), padding="CIRCULAR").init(jax.random.key(0), x)
