"""Samplers of the autoregressive image models: naive, cached (fast) and multiscale.

Every sampler returns the **integer pixel values** ``(B, H, W, C)`` int32 (``{0, 1}`` for
Bernoulli models, ``0 .. K-1`` for a K-way softmax, ``0 .. 255`` for the discretized logistic
mixture) and feeds the model the same input scaling as training, :func:`network_input`.

Noise is fixed per position: the draw of sub-pixel ``t = (i W + j) C + c`` (raster order, then
channel) uses ``jax.random.fold_in(key, t)`` whatever the sampler, so two samplers of the same
model given the same key produce the *same* sample (their logits agree to float rounding, and a
draw flips only at an exact tie), and changing the noise of a later position cannot change an
earlier one. Draws: Gumbel-max for a softmax (``argmax(logits + g)``), ``logit(u) < logit`` for
a Bernoulli, and for the discretized logistic mixture a Gumbel-max component choice followed by
an inverse-CDF logistic draw per channel, rounded to its 8-bit bin (exact sampling of the
discretized distribution, edge bins included).

* :func:`naive_sample` - one full network pass per sub-pixel (per pixel for the logistic
  mixture, whose channels are coupled inside the likelihood), as a ``lax.fori_loop`` over the
  raster order: ``H W C`` passes over the whole image, O(N^2) work for N sub-pixels.
* :func:`cached_pixelcnn_sample` - the same sample from a :class:`~genjax.models.pixelcnn.PixelCNN`
  computing, at each step, only the activations of the new position: every layer whose kernel
  is wider than 1x1 reads a cache of its past input activations, so a step costs one position's
  worth of every layer, O(N) work in all (Ramachandran et al. 2017).
* :func:`multiscale_sample` - the parallel multiscale sampler of Reed et al. (2017): the base
  image naively, then every pixel group of every scale in parallel, ``b^2 C + 3 S C``
  sequential network evaluations for a ``b x b`` base and S upscalings.

Precision: a network may compute in bfloat16 (its ``dtype``, ``train.compute_dtype``); its
logits (float32 from the genjax modules, or any float dtype from a caller's function) are
cast up to at least float32 before every draw, so the noise, the comparisons and the logistic
inverse CDF run in float32 and the drawn values are exact integers whatever the network's dtype.
The cached sampler computes its activations in ``model.dtype``, like the module.

References:
  van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML 2016.
  Salimans, Karpathy, Chen & Kingma, "PixelCNN++", ICLR 2017, Eq. 2 and Section 2.2.
  Ramachandran, Paine, Khorrami, Babaeizadeh, Chang, Zhang, Hasegawa-Johnson, Campbell & Huang,
  "Fast Generation for Convolutional Autoregressive Models", ICLR 2017 workshop, arXiv:1704.06001.
  Reed et al., "Parallel Multiscale Autoregressive Density Estimation", ICML 2017, Section 3.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from genjax.models.multiscale_pixelcnn import (
    extract_group,
    insert_group,
    known_groups,
    multiscale_groups,
)
from genjax.models.pixelcnn import PixelCNN, as_float32, causal_mask

LIKELIHOODS = ("bernoulli", "categorical", "logistic_mixture")
_LOGISTIC_BINS = 256  # the discretized logistic mixture is over 8-bit values


def _check(likelihood: str, shape) -> tuple[int, int, int, int]:
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood={likelihood!r}; expected one of {LIKELIHOODS}")
    if len(shape) != 4 or any(int(s) < 1 for s in shape):
        raise ValueError(f"shape must be a positive (B, H, W, C), got {tuple(shape)}")
    return tuple(int(s) for s in shape)


def network_input(values: jax.Array, likelihood: str, num_values: int = 256) -> jax.Array:
    """The model input for pixel values: ``{0, 1}`` as is (Bernoulli), else ``2 v / (K - 1) - 1``.

    Args:
      values: integer (or {0, 1} float) pixel values, any shape.
      likelihood: "bernoulli", "categorical" (K = ``num_values``) or "logistic_mixture" (K = 256).
      num_values: K of the categorical likelihood.

    Returns:
      float32 array of the shape of ``values``, in [-1, 1] (or {0, 1} for Bernoulli).
    """
    v = jnp.asarray(values).astype(jnp.float32)
    if likelihood == "bernoulli":
        return v
    k = _LOGISTIC_BINS if likelihood == "logistic_mixture" else num_values
    return v * (2.0 / (k - 1)) - 1.0


def draw_bernoulli(key: jax.Array, logits: jax.Array) -> jax.Array:
    """``1[logit(u) < logits]`` with ``u ~ U[0, 1)``: Bernoulli(sigmoid(logits)) draws, int32."""
    logits = as_float32(jnp.asarray(logits))
    u = jax.random.uniform(key, logits.shape)
    return (jnp.log(u) - jnp.log1p(-u) < logits).astype(jnp.int32)


def draw_categorical(key: jax.Array, logits: jax.Array) -> jax.Array:
    """Gumbel-max: ``argmax_k(logits_k + g_k)``, ``g`` standard Gumbel; logits (..., K) -> (...)."""
    logits = as_float32(jnp.asarray(logits))
    return jnp.argmax(logits + jax.random.gumbel(key, logits.shape), axis=-1).astype(jnp.int32)


def draw_logistic_mixture(
    key: jax.Array, params: jax.Array, channels: int, *, min_log_scale: float = -7.0
) -> jax.Array:
    """One pixel per row from the PixelCNN++ discretized logistic mixture, 8-bit values (B, C).

    ``params`` (B, P) has the layout read by
    :func:`genjax.losses.discretized_logistic_mixture_nll` (M logits, then per channel means,
    log-scales clipped at ``min_log_scale`` and, for RGB, ``tanh`` coupling coefficients). The
    component ``k`` is drawn by Gumbel-max; channel c is ``mu_c + s_c logit(u_c)`` rounded to its
    bin ``v = round((x + 1) 255 / 2)`` clipped to 0..255 (so the edge bins take the tails), with
    ``mu_g = m_g + alpha x_r`` and ``mu_b = m_b + beta x_r + gamma x_g`` on the *discretized*
    ``x_r, x_g`` (Salimans et al. 2017, Eq. 2 and Section 2.2). ``params`` of a lower precision
    are cast to float32 first: bfloat16's spacing near 1 (2^-7) is a whole 8-bit bin (2 / 255).
    """
    params = as_float32(jnp.asarray(params))
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3 for the logistic mixture, got {channels}")
    per_mixture = 10 if channels == 3 else 3
    if params.ndim != 2 or params.shape[-1] % per_mixture:
        raise ValueError(
            f"params must be (B, {per_mixture} M) for C = {channels}, got shape {params.shape}"
        )
    m = params.shape[-1] // per_mixture
    k_mix, k_logistic = jax.random.split(key)
    comp = draw_categorical(k_mix, params[:, :m])  # (B,)
    rest = params[:, m:].reshape(params.shape[0], channels, (per_mixture - 1) // channels, m)
    rest = jnp.take_along_axis(rest, comp[:, None, None, None], axis=-1)[..., 0]  # (B, C, rows)
    means, log_scales = rest[..., 0], jnp.maximum(rest[..., 1], min_log_scale)
    u = jax.random.uniform(k_logistic, means.shape)
    noise = jnp.exp(log_scales) * (jnp.log(u) - jnp.log1p(-u))  # u = 0 gives -inf: bin 0
    values, xs = [], []
    for c in range(channels):
        mean = means[:, c]
        if c == 1:
            mean = mean + jnp.tanh(rest[:, 0, 2]) * xs[0]
        elif c == 2:
            mean = mean + jnp.tanh(rest[:, 1, 2]) * xs[0] + jnp.tanh(rest[:, 2, 2]) * xs[1]
        v = jnp.clip(jnp.round((mean + noise[:, c] + 1.0) * 127.5), 0, 255).astype(jnp.int32)
        values.append(v)
        xs.append(v * (2.0 / 255.0) - 1.0)
    return jnp.stack(values, axis=-1)


def naive_sample(
    apply_fn: Callable[[jax.Array], jax.Array],
    key: jax.Array,
    shape: tuple[int, int, int, int],
    *,
    likelihood: str,
    num_values: int = 256,
) -> jax.Array:
    """Raster-order sampling with one full network pass per sub-pixel (per pixel for mixtures).

    Args:
      apply_fn: the teacher-forced network, ``x (B, H, W, C) -> outputs`` for every position at
        once: logits (B, H, W, C, K) ("categorical"), logits (B, H, W, C) ("bernoulli") or
        mixture parameters (B, H, W, P) ("logistic_mixture"). Close over params and labels.
      key: the sample's key; sub-pixel t draws with ``fold_in(key, t)`` (pixel t for mixtures).
      shape: (B, H, W, C) of the sample.
      likelihood: "bernoulli", "categorical" or "logistic_mixture".
      num_values: K of the categorical likelihood (the input scaling of :func:`network_input`).

    Returns:
      int32 pixel values (B, H, W, C). Jit the caller: the loop is a ``lax.fori_loop`` of
      ``H W C`` (``H W`` for mixtures) network passes.
    """
    b, h, w, c = _check(likelihood, shape)
    per_pixel = likelihood == "logistic_mixture"

    def body(t, values):
        out = apply_fn(network_input(values, likelihood, num_values))
        k = jax.random.fold_in(key, t)
        if per_pixel:
            i, j = jnp.divmod(t, w)
            return values.at[:, i, j].set(draw_logistic_mixture(k, out[:, i, j], c))
        pixel, ch = jnp.divmod(t, c)
        i, j = jnp.divmod(pixel, w)
        logits = out[:, i, j, ch]
        draw = draw_bernoulli if likelihood == "bernoulli" else draw_categorical
        return values.at[:, i, j, ch].set(draw(k, logits))

    steps = h * w if per_pixel else h * w * c
    return jax.lax.fori_loop(0, steps, body, jnp.zeros((b, h, w, c), jnp.int32))


def cached_pixelcnn_sample(
    model: PixelCNN, variables: dict, key: jax.Array, shape: tuple[int, int, int, int]
) -> jax.Array:
    """The sample of :func:`naive_sample` from a PixelCNN, computing one position per step.

    Fast generation by caching (Ramachandran et al. 2017): in :class:`PixelCNN` only the first
    ``k0 x k0`` type-A convolution and each block's ``k x k`` convolution see other positions;
    every other layer is 1x1. The sampler keeps, per such layer, the map of its *input*
    activations computed so far (the padded canvas for the first layer, the ReLU of each block's
    1x1 reduction for the blocks). Step t (sub-pixel ``(i, j, c)``) computes every layer at
    position ``(i, j)`` only: each wide convolution reads the rows ``i - k//2 .. i`` of its cache
    around column ``j`` (the masked kernel ignores what is right of or below the centre), the new
    block activations are written into the caches, and the head gives the logits of ``(i, j, c)``.
    A step thus costs one position of every layer instead of the whole image: O(N) instead of
    O(N^2) for N sub-pixels. The position is recomputed for each of its C channels, since the
    features of colour group g at ``(i, j)`` read channels ``< g`` of the pixel; after the last
    channel the caches hold exactly the teacher-forced activations at ``(i, j)``. Kernels, canvas
    and caches are in ``model.dtype`` (the module's computation dtype), the logits in float32.

    Args:
      model: the :class:`PixelCNN` whose ``variables`` these are.
      variables: ``{"params": ...}`` of ``model``.
      key: as for :func:`naive_sample`; the same key gives the same sample.
      shape: (B, H, W, C) with C = ``model.color_channels``.

    Returns:
      int32 pixel values (B, H, W, C) (``{0, 1}`` for ``output="bernoulli"``).
    """
    if not isinstance(model, PixelCNN):
        raise ValueError(f"cached sampling is for PixelCNN models, got {type(model).__name__}")
    likelihood = model.output
    b, h, w, c = _check(likelihood, shape)
    if c != model.color_channels:
        raise ValueError(f"shape must have C = color_channels = {c}, got {tuple(shape)}")
    params = variables["params"]
    k0, k, f, dtype = model.first_kernel_size, model.kernel_size, model.features, model.dtype

    def masked(name, size, n_in, n_out):  # masked kernel (size, size, in, out) and bias
        layer = params
        for part in name.split("/"):
            layer = layer[part]
        mask = causal_mask((size, size), n_in, n_out, "A" if name == "input_conv" else "B", c)
        return (layer["kernel"] * mask).astype(dtype), layer["bias"].astype(dtype)

    def dense(name, n_in, n_out):
        kernel, bias = masked(name, 1, n_in, n_out)
        return lambda z: z @ kernel[0, 0] + bias

    first_kernel, first_bias = masked("input_conv", k0, c, 2 * f)
    blocks = [
        (
            dense(f"block{n}_reduce", 2 * f, f),
            masked(f"block{n}_conv", k, f, f),
            dense(f"block{n}_expand", f, 2 * f),
        )
        for n in range(model.num_blocks)
    ]
    head_hidden = dense("head/hidden", 2 * f, model.output_features)
    num_out = c * model.num_values if likelihood == "categorical" else c
    head_out = dense("head/logits", model.output_features, num_out)
    p0, p = k0 // 2, k // 2

    def window_conv(cache, i, j, kernel, pad, bias):  # the centre-and-above rows only
        size = (b, pad + 1, 2 * pad + 1, cache.shape[-1])
        rows = jax.lax.dynamic_slice(cache, (0, i, j, 0), size)
        return jnp.einsum("bhwi,hwio->bo", rows, kernel[: pad + 1]) + bias

    def body(t, carry):
        canvas, caches, values = carry
        pixel, ch = jnp.divmod(t, c)
        i, j = jnp.divmod(pixel, w)
        hid = window_conv(canvas, i, j, first_kernel, p0, first_bias)
        new_caches = []
        for (reduce, (kernel, bias), expand), cache in zip(blocks, caches, strict=True):
            r = jax.nn.relu(reduce(jax.nn.relu(hid)))
            cache = jax.lax.dynamic_update_slice(cache, r[:, None, None], (0, i + p, j + p, 0))
            new_caches.append(cache)
            hid = hid + expand(jax.nn.relu(window_conv(cache, i, j, kernel, p, bias)))
        out = as_float32(head_out(jax.nn.relu(head_hidden(jax.nn.relu(hid)))))
        k_t = jax.random.fold_in(key, t)
        if likelihood == "categorical":
            v = draw_categorical(k_t, out.reshape(b, c, model.num_values)[:, ch])
        else:
            v = draw_bernoulli(k_t, out[:, ch])
        x = network_input(v, likelihood, model.num_values)
        canvas = canvas.at[:, i + p0, j + p0, ch].set(x.astype(dtype))
        return canvas, new_caches, values.at[:, i, j, ch].set(v)

    zeros = jnp.zeros((b, h, w, c), jnp.int32)
    # 'SAME' zero padding outside the image; unsampled pixels hold the input of value 0 (as in
    # naive_sample's canvas), though the masks never let a step read them.
    canvas = jnp.pad(
        network_input(zeros, likelihood, model.num_values).astype(dtype),
        ((0, 0), (p0, p0), (p0, p0), (0, 0)),
    )
    caches = [jnp.zeros((b, h + 2 * p, w + 2 * p, f), dtype) for _ in blocks]
    _, _, values = jax.lax.fori_loop(0, h * w * c, body, (canvas, caches, zeros))
    return values


def multiscale_num_evaluations(height: int, width: int, channels: int, num_scales: int) -> int:
    """Sequential network evaluations of :func:`multiscale_sample`: ``b_h b_w C + 3 S C``."""
    base = multiscale_groups(height, width, num_scales)[0]
    return (height // base.stride) * (width // base.stride) * channels + 3 * num_scales * channels


def multiscale_sample(
    base_fn: Callable[[jax.Array], jax.Array],
    group_fn: Callable[[int, jax.Array, jax.Array], jax.Array],
    key: jax.Array,
    shape: tuple[int, int, int, int],
    *,
    num_scales: int,
    likelihood: str,
    num_values: int = 256,
) -> jax.Array:
    """Parallel multiscale sampling (Reed et al. 2017, Sec. 3): base image, then groups in parallel.

    The base image ``(B, H / 2^S, W / 2^S, C)`` is sampled by :func:`naive_sample` with
    ``base_fn`` (one pass of the small base network per sub-pixel). Then, for each upscaling
    group of :func:`~genjax.models.multiscale_pixelcnn.multiscale_groups` in order, all of its
    pixels are drawn at once, channel by channel: ``group_fn(index, known, target)`` gives the
    logits of the group from the earlier groups of its scale (``known``) and the group's own
    channels drawn so far (``target``, zeros for the rest). In all
    :func:`multiscale_num_evaluations` sequential network evaluations: O(log N) for a fixed base.

    Args:
      base_fn: ``x_base -> logits`` of the base model (close over params and labels).
      group_fn: ``(index, known, target) -> logits`` of upscaling group ``index`` (1 .. 3 S).
      key: the sample's key (the base uses ``fold_in(key, 0)``, group channel draws
        ``fold_in(fold_in(key, 1), index C + c)``).
      shape: (B, H, W, C), H and W multiples of ``2**num_scales``.
      num_scales: S.
      likelihood: "bernoulli" or "categorical".
      num_values: K of the categorical likelihood.

    Returns:
      int32 pixel values (B, H, W, C).
    """
    b, h, w, c = _check(likelihood, shape)
    if likelihood == "logistic_mixture":
        raise ValueError(
            "likelihood='logistic_mixture': the multiscale model has bernoulli or categorical outputs"
        )
    groups = multiscale_groups(h, w, num_scales)
    base_shape = (b, h // groups[0].stride, w // groups[0].stride, c)
    base = naive_sample(
        base_fn,
        jax.random.fold_in(key, 0),
        base_shape,
        likelihood=likelihood,
        num_values=num_values,
    )
    values = insert_group(jnp.zeros((b, h, w, c), jnp.int32), groups[0], base)
    group_key = jax.random.fold_in(key, 1)
    draw = draw_bernoulli if likelihood == "bernoulli" else draw_categorical
    for index, group in enumerate(groups[1:], start=1):
        known = known_groups(network_input(values, likelihood, num_values), group)
        target = jnp.zeros_like(extract_group(values, group))
        for ch in range(c):
            logits = group_fn(index, known, network_input(target, likelihood, num_values))
            logits = logits[..., ch, :] if likelihood == "categorical" else logits[..., ch]
            drawn = draw(jax.random.fold_in(group_key, index * c + ch), logits)
            target = target.at[..., ch].set(drawn)
        values = insert_group(values, group, target)
    return values
