"""Convolution speed: ``lax`` vs :mod:`genjax.models.convolution` vs a PyTorch twin, per genjax layer.

    python benchmarks/bench_convolution.py                        # every layer, JSON to bench_conv.json
    python benchmarks/bench_convolution.py --only pixelcnn dcgan  # layers whose name contains a word
    python benchmarks/bench_convolution.py --rounds 9 --out /tmp/bench_conv.json

Each row is one convolution of a genjax model at the batch size of its MNIST config (NHWC,
HWIO, float32): PixelCNN and Gated PixelCNN (batch 64), DCGAN (128), the convolutional VAE
(100), the classifier (100), Real NVP's s/t networks (64), the CycleGAN (16) and StarGAN
(16 for G, 80 for D) networks, PixelCNN++'s shifted convolutions (batch 16 of 32x32). Masked
layers multiply the kernel by their mask in all three (the mask is a static argument of
``genjax.models.convolution.conv2d``).

Timed, in milliseconds (median over ``--rounds`` rounds after ``--warmup`` calls; the three
implementations alternate within each round, in an order rotated from round to round and with
a short pause before each call, so that drift on a shared machine and torch's spinning OpenMP
threads affect them alike):

* fwd: the convolution;
* fwd+bwd: the convolution and its gradients with respect to the input and the kernel for a
  fixed output cotangent (``jax.vjp`` / torch's ``backward``).

``lax`` is ``lax.conv_general_dilated`` or ``lax.conv_transpose``; ``genjax`` is
``genjax.models.convolution.conv2d`` / ``conv_transpose2d`` with ``formulation="auto"`` (what the
models run); ``torch`` is ``torch.nn.functional.conv2d`` / ``conv_transpose2d`` in eager mode,
NCHW, the same values (checked once per row; the kernels are flipped for the transposed
convolutions: ``lax.conv_transpose`` does not flip). Ratios: ``lax/genjax`` (> 1: genjax is
faster than lax) and ``genjax/torch`` (< 1: genjax is faster than torch). Reports, never
asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from _report import report
from jax import lax

from genjax.models import convolution as conv

DN = ("NHWC", "HWIO", "NHWC")


@dataclass(frozen=True)
class Layer:
    name: str
    batch: int
    hw: tuple[int, int]  # input height and width
    features: tuple[int, int]  # (C_in, C_out)
    kernel: tuple[int, int]
    strides: int = 1
    padding: str | tuple = "SAME"
    transpose: bool = False
    mask: str | None = None  # PixelCNN mask: "A" or "B", one colour group


def _pixelcnn_mask(kernel, features, mask_type) -> np.ndarray:
    """Raster-order mask, one colour group: rows above, left of (for "B" also at) the centre."""
    kh, kw = kernel
    m = np.zeros((kh, kw, *features), np.float32)
    m[: kh // 2] = 1
    m[kh // 2, : kw // 2] = 1
    if mask_type == "B":
        m[kh // 2, kw // 2] = 1
    return m


P1 = ((1, 1), (1, 1))
LAYERS = [
    # PixelCNN (batch 64, 28x28, h = 64, 15 blocks, head 256)
    Layer("pixelcnn.input 7x7 A 1->128", 64, (28, 28), (1, 128), (7, 7), mask="A"),
    Layer("pixelcnn.reduce 1x1 128->64", 64, (28, 28), (128, 64), (1, 1)),
    Layer("pixelcnn.block 3x3 B 64->64", 64, (28, 28), (64, 64), (3, 3), mask="B"),
    Layer("pixelcnn.expand 1x1 64->128", 64, (28, 28), (64, 128), (1, 1)),
    Layer("pixelcnn.head 1x1 128->256", 64, (28, 28), (128, 256), (1, 1)),
    Layer("pixelcnn.logits 1x1 256->1", 64, (28, 28), (256, 1), (1, 1)),
    # Gated PixelCNN (batch 64, p = 64)
    Layer("gated.vertical0 4x7 1->128", 64, (28, 28), (1, 128), (4, 7), padding=((3, 0), (3, 3))),
    Layer("gated.horizontal0 1x7 A 1->128", 64, (28, 28), (1, 128), (1, 7), mask="A"),
    Layer("gated.vertical 2x3 64->128", 64, (28, 28), (64, 128), (2, 3), padding=((1, 0), (1, 1))),
    Layer("gated.horizontal 1x3 B 64->128", 64, (28, 28), (64, 128), (1, 3), mask="B"),
    Layer("gated.link 1x1 128->128", 64, (28, 28), (128, 128), (1, 1)),
    # DCGAN (batch 128)
    Layer("dcgan.G1 T4x4s2 128->64", 128, (7, 7), (128, 64), (4, 4), 2, transpose=True),
    Layer("dcgan.G2 T4x4s2 64->1", 128, (14, 14), (64, 1), (4, 4), 2, transpose=True),
    Layer("dcgan.D1 4x4s2 1->64", 128, (28, 28), (1, 64), (4, 4), 2),
    Layer("dcgan.D2 4x4s2 64->128", 128, (14, 14), (64, 128), (4, 4), 2),
    # Convolutional VAE (batch 100)
    Layer("vae.enc1 4x4s2 1->32", 100, (28, 28), (1, 32), (4, 4), 2),
    Layer("vae.enc2 4x4s2 32->64", 100, (14, 14), (32, 64), (4, 4), 2),
    Layer("vae.dec1 T4x4s2 64->32", 100, (7, 7), (64, 32), (4, 4), 2, transpose=True),
    Layer("vae.dec2 T4x4s2 32->32", 100, (14, 14), (32, 32), (4, 4), 2, transpose=True),
    Layer("vae.out 3x3 32->1", 100, (28, 28), (32, 1), (3, 3)),
    # Classifier (batch 100)
    Layer("classifier.conv0 3x3 1->32", 100, (28, 28), (1, 32), (3, 3)),
    Layer("classifier.conv1 3x3 32->64", 100, (14, 14), (32, 64), (3, 3)),
    # Real NVP s/t networks (batch 64, 64 features)
    Layer("realnvp.st 3x3 64->64 @28", 64, (28, 28), (64, 64), (3, 3)),
    Layer("realnvp.st 3x3 64->64 @14", 64, (14, 14), (64, 64), (3, 3)),
    # CycleGAN (batch 16, 32 features) on reflection-padded inputs
    Layer("cyclegan.in 7x7 VALID 1->32", 16, (34, 34), (1, 32), (7, 7), padding="VALID"),
    Layer("cyclegan.down 3x3s2 32->64", 16, (28, 28), (32, 64), (3, 3), 2, padding=P1),
    Layer("cyclegan.res 3x3 VALID 128->128", 16, (9, 9), (128, 128), (3, 3), padding="VALID"),
    Layer("cyclegan.up T3x3s2 128->64", 16, (7, 7), (128, 64), (3, 3), 2, transpose=True),
    Layer("cyclegan.up T3x3s2 64->32", 16, (14, 14), (64, 32), (3, 3), 2, transpose=True),
    Layer("cyclegan.out 7x7 VALID 32->1", 16, (34, 34), (32, 1), (7, 7), padding="VALID"),
    Layer("patchgan.d1 4x4s2 1->32", 16, (28, 28), (1, 32), (4, 4), 2, padding=P1),
    Layer("patchgan.d3 4x4s1 64->128", 16, (7, 7), (64, 128), (4, 4), 1, padding=P1),
    # StarGAN (G batch 16, D batch 80)
    Layer("stargan.in 7x7 5->32", 16, (28, 28), (5, 32), (7, 7), padding=((3, 3), (3, 3))),
    Layer("stargan.down 4x4s2 32->64", 16, (28, 28), (32, 64), (4, 4), 2, padding=P1),
    Layer("stargan.up T4x4s2 128->64", 16, (7, 7), (128, 64), (4, 4), 2, transpose=True),
    Layer("stargan.d2 4x4s2 32->64", 80, (14, 14), (32, 64), (4, 4), 2, padding=P1),
    Layer("stargan.cls 7x7 VALID 64->4", 80, (7, 7), (64, 4), (7, 7), padding="VALID"),
    # PixelCNN++ (batch 16, 32x32, 80 features): shifted convolutions, stride 2, upsampling
    Layer("pixelcnnpp.down 2x3 VALID 80->80", 16, (33, 34), (80, 80), (2, 3), padding="VALID"),
    Layer("pixelcnnpp.stride 2x3s2 VALID 80->80", 16, (33, 34), (80, 80), (2, 3), 2, "VALID"),
    Layer("pixelcnnpp.up T2x3s2 VALID 80->80", 16, (16, 16), (80, 80), (2, 3), 2, "VALID", True),
]


def jax_functions(layer: Layer, formulation: str | None):
    """(fwd, fwd+bwd) jitted: lax when ``formulation`` is None, else genjax.models.convolution."""
    s, p = (layer.strides,) * 2, layer.padding
    mask = None if layer.mask is None else _pixelcnn_mask(layer.kernel, layer.features, layer.mask)

    def f(x, k):
        if formulation is None:
            k = k if mask is None else k * mask
            if layer.transpose:
                return lax.conv_transpose(x, k, s, p, dimension_numbers=DN)
            return lax.conv_general_dilated(x, k, s, p, dimension_numbers=DN)
        if layer.transpose:
            return conv.conv_transpose2d(x, k, strides=s, padding=p, formulation=formulation)
        return conv.conv2d(x, k, strides=s, padding=p, mask=mask, formulation=formulation)

    def fwd_bwd(x, k, g):
        y, vjp = jax.vjp(f, x, k)
        return (y, *vjp(g))

    return jax.jit(f), jax.jit(fwd_bwd)


def torch_functions(layer: Layer, x: np.ndarray, k: np.ndarray, g: np.ndarray):
    """(fwd, fwd+bwd) closures of the PyTorch twin on NCHW copies of the same arrays."""
    import torch
    import torch.nn.functional as F

    kh, kw = layer.kernel
    s = layer.strides
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    gt = torch.from_numpy(np.ascontiguousarray(g.transpose(0, 3, 1, 2)))
    if layer.mask is not None:
        k = k * _pixelcnn_mask(layer.kernel, layer.features, layer.mask)
    if layer.transpose:
        # lax.conv_transpose correlates the dilated input with k; torch convolves (flips).
        wt = torch.from_numpy(np.ascontiguousarray(k[::-1, ::-1].transpose(2, 3, 0, 1)))
        (a0, a1), (b0, b1) = conv.transpose_padding(layer.padding, layer.kernel, (s, s))
        # torch pads the dilated input by k - 1 - padding on both sides; lax by (a0, a1), (b0, b1).
        ph, pw = max(0, kh - 1 - max(a0, a1)), max(0, kw - 1 - max(b0, b1))
        crop = (kw - 1 - b0 - pw, kw - 1 - b1 - pw, kh - 1 - a0 - ph, kh - 1 - a1 - ph)

        def f(a, w):
            y = F.conv_transpose2d(a, w, stride=s, padding=(ph, pw))
            return F.pad(y, tuple(-c for c in crop)) if any(crop) else y

    else:
        wt = torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))
        pads = conv._conv_padding(layer.padding, layer.hw, layer.kernel, (s, s))
        (t, b), (le, r) = pads
        symmetric = t == b and le == r

        def f(a, w):
            if symmetric:
                return F.conv2d(a, w, stride=s, padding=(t, le))
            return F.conv2d(F.pad(a, (le, r, t, b)), w, stride=s)

    def fwd():
        with torch.no_grad():
            return f(xt, wt)

    def fwd_bwd():
        a = xt.detach().requires_grad_(True)
        w = wt.detach().requires_grad_(True)
        y = f(a, w)
        y.backward(gt)
        return y, a.grad, w.grad

    with torch.no_grad():
        y = f(xt, wt).numpy().transpose(0, 2, 3, 1)
    return fwd, fwd_bwd, y


def _time(fn, warmup: int) -> float:
    for _ in range(warmup):
        jax.block_until_ready(fn())
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    return 1000 * (time.perf_counter() - t0)


def bench(layer: Layer, rounds: int, warmup: int, use_torch: bool) -> dict:
    rng = np.random.default_rng(0)
    c, o = layer.features
    x = rng.standard_normal((layer.batch, *layer.hw, c), dtype=np.float32)
    fan_in = c * layer.kernel[0] * layer.kernel[1]
    k = (rng.standard_normal((*layer.kernel, c, o)) / np.sqrt(fan_in)).astype(np.float32)
    lax_f, lax_fb = jax_functions(layer, None)
    gx_f, gx_fb = jax_functions(layer, "auto")
    xj, kj = jnp.asarray(x), jnp.asarray(k)
    y_lax = np.asarray(lax_f(xj, kj))
    g = rng.standard_normal(y_lax.shape, dtype=np.float32)
    gj = jnp.asarray(g)
    scale = np.abs(y_lax).max()
    calls = {
        "lax_fwd": lambda: lax_f(xj, kj),
        "genjax_fwd": lambda: gx_f(xj, kj),
        "lax_fwd_bwd": lambda: lax_fb(xj, kj, gj),
        "genjax_fwd_bwd": lambda: gx_fb(xj, kj, gj),
    }
    mask = None if layer.mask is None else _pixelcnn_mask(layer.kernel, layer.features, layer.mask)
    formulation = conv.cpu_formulation(x.shape, k.shape, strides=layer.strides,
                                       padding=layer.padding, mask=mask,
                                       transpose=layer.transpose)
    row = {"layer": layer.name, "batch": layer.batch, "cpu_formulation": formulation,
           "load_average_1min": round(os.getloadavg()[0], 2),
           "max_rel_diff_genjax": float(np.abs(np.asarray(gx_f(xj, kj)) - y_lax).max() / scale)}
    if use_torch:
        t_f, t_fb, y_torch = torch_functions(layer, x, k, g)
        calls["torch_fwd"], calls["torch_fwd_bwd"] = t_f, t_fb
        row["max_rel_diff_torch"] = float(np.abs(y_torch - y_lax).max() / scale)
    times = {name: [] for name in calls}
    for fn in calls.values():  # compile and warm up
        _time(fn, warmup)
    names = list(calls)
    for r in range(rounds):
        # Rotate the order: a call right after a torch call competes with its spinning OpenMP
        # threads; the pause lets them go idle.
        for name in names[r % len(names):] + names[: r % len(names)]:
            time.sleep(0.05)
            times[name].append(_time(calls[name], 0))
    for name, ts in times.items():
        row[name] = round(statistics.median(ts), 2)
    for part in ("fwd", "fwd_bwd"):
        row[f"lax/genjax_{part}"] = round(row[f"lax_{part}"] / row[f"genjax_{part}"], 2)
        if use_torch:
            row[f"genjax/torch_{part}"] = round(row[f"genjax_{part}"] / row[f"torch_{part}"], 2)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", default=[], help="keep layers whose name contains one")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch twin")
    p.add_argument("--out", default="bench_conv.json")
    args = p.parse_args()
    use_torch = not args.no_torch
    if use_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch is not importable: no PyTorch column")
            use_torch = False
    layers = [la for la in LAYERS if not args.only or any(w in la.name for w in args.only)]
    rows = []
    for layer in layers:
        rows.append(bench(layer, args.rounds, args.warmup, use_torch))
        print(rows[-1], flush=True)
    header = ["layer", "batch", "cpu_formulation", "lax_fwd", "genjax_fwd"]
    header += ["torch_fwd"] if use_torch else []
    header += ["lax_fwd_bwd", "genjax_fwd_bwd"] + (["torch_fwd_bwd"] if use_torch else [])
    header += ["lax/genjax_fwd", "lax/genjax_fwd_bwd"]
    header += ["genjax/torch_fwd", "genjax/torch_fwd_bwd"] if use_torch else []
    report({"convolutions, ms (median)": (header, rows)}, args.out)


if __name__ == "__main__":
    main()
