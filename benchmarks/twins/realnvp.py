"""PyTorch twin of :class:`genjax.methods.flow.RealNVPMethod` (``architecture="image"``).

Multi-scale Real NVP (Dinh et al. 2017, Sec. 3.6): per scale 3 checkerboard couplings, a 2x2
squeeze, 3 channel couplings and half the channels factored out; 4 checkerboard couplings at the
last scale; batch normalization (Sec. 3.7) after every coupling. Couplings use weight-normalized
ResNet s/t networks with ``s = scale * tanh(raw_s)``. The loss is genjax's: uniform
dequantization, the logit transform with its Jacobian, ``log N(z; 0, I) + log|det|``, in bits per
dimension of the 8-bit data, averaged over the batch. One Adam update (with global-norm
clipping) per step. The prior term is summed over the factored-out parts directly (the
elementwise prior does not depend on genjax's latent layout).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import Twin
from .common import OptaxAdam, UnsupportedConfig, preprocess
from .convert import assign, conv_weight

_LOG_2PI = math.log(2 * math.pi)


class WNConv(nn.Module):
    """Weight-normalized 3x3 'SAME' convolution ``w = g * v / ||v||`` (norm per output channel)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3):
        super().__init__()
        self.v = nn.Parameter(torch.empty(out_channels, in_channels, kernel, kernel))
        self.g = nn.Parameter(torch.ones(out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.padding = kernel // 2

    def forward(self, x):
        w = self.g[:, None, None, None] * self.v / torch.sqrt((self.v**2).sum((1, 2, 3)))[
            :, None, None, None]
        return F.conv2d(x, w, self.bias, padding=self.padding)

    def load(self, params: dict) -> None:
        assign(self.v, conv_weight(params["v"]))
        assign(self.g, params["g"])
        assign(self.bias, params["bias"])


class ResNetST(nn.Module):
    """``conv_in``, ``num_blocks`` x [relu, conv, relu, conv] + skip, relu, ``conv_out``."""

    def __init__(self, in_channels: int, features: int, out_channels: int, num_blocks: int):
        super().__init__()
        self.conv_in = WNConv(in_channels, features)
        self.blocks = nn.ModuleList(
            nn.ModuleList([WNConv(features, features), WNConv(features, features)])
            for _ in range(num_blocks))
        self.conv_out = WNConv(features, out_channels)

    def forward(self, x):
        h = self.conv_in(x)
        for conv0, conv1 in self.blocks:
            h = h + conv1(F.relu(conv0(F.relu(h))))
        return self.conv_out(F.relu(h))

    def load(self, params: dict) -> None:
        self.conv_in.load(params["conv_in"])
        for i, (conv0, conv1) in enumerate(self.blocks):
            conv0.load(params[f"block{i}_conv0"])
            conv1.load(params[f"block{i}_conv1"])
        self.conv_out.load(params["conv_out"])


class AffineCoupling(nn.Module):
    """Checkerboard or channel-wise affine coupling (Real NVP eqs. 4-9), NCHW."""

    def __init__(self, mask_type: str, parity: int, channels: int, size: tuple[int, int],
                 features: int, num_blocks: int):
        super().__init__()
        self.mask_type, self.parity = mask_type, parity
        if mask_type == "checkerboard":
            ii, jj = torch.meshgrid(torch.arange(size[0]), torch.arange(size[1]), indexing="ij")
            self.register_buffer("mask", ((ii + jj) % 2 == parity).float()[None, None])
            self.st = ResNetST(channels, features, 2 * channels, num_blocks)
            self.scale = nn.Parameter(torch.ones(channels))
        else:
            self.st = ResNetST(channels // 2, features, channels, num_blocks)
            self.scale = nn.Parameter(torch.ones(channels // 2))

    def _s_t(self, raw):
        raw_s, t = raw.chunk(2, dim=1)
        return self.scale[None, :, None, None] * torch.tanh(raw_s), t

    def forward(self, x):
        if self.mask_type == "checkerboard":
            b = self.mask
            s, t = self._s_t(self.st(b * x))
            s, t = (1 - b) * s, (1 - b) * t
            y = b * x + (1 - b) * (x * torch.exp(s) + t)
            return y, s.float().sum((1, 2, 3))
        x_a, x_b = x.chunk(2, dim=1)
        cond, moved = (x_a, x_b) if self.parity == 0 else (x_b, x_a)
        s, t = self._s_t(self.st(cond))
        moved = moved * torch.exp(s) + t
        y = torch.cat([cond, moved] if self.parity == 0 else [moved, cond], dim=1)
        return y, s.float().sum((1, 2, 3))

    def load(self, params: dict) -> None:
        self.st.load(params["st"])
        assign(self.scale, params["scale"])


class BatchNormBijector(nn.Module):
    """Batch normalization as a bijector with ``exp(log_gamma)`` scale (Real NVP Sec. 3.7)."""

    def __init__(self, channels: int, momentum: float = 0.99, eps: float = 1e-5):
        super().__init__()
        self.log_gamma = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.momentum, self.eps = momentum, eps

    def forward(self, x):
        x = x.float()
        mean = x.mean((0, 2, 3))
        var = ((x - mean[None, :, None, None]) ** 2).mean((0, 2, 3))
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(m).add_((1 - m) * mean)
            self.running_var.mul_(m).add_((1 - m) * var)
        log_scale = self.log_gamma - 0.5 * torch.log(var + self.eps)
        y = (x - mean[None, :, None, None]) * torch.exp(log_scale)[None, :, None, None] \
            + self.beta[None, :, None, None]
        count = x.shape[2] * x.shape[3]
        return y, (count * log_scale.sum()).expand(x.shape[0])

    def load(self, params: dict, stats: dict | None) -> None:
        assign(self.log_gamma, params["log_gamma"])
        assign(self.beta, params["beta"])
        if stats is not None:
            assign(self.running_mean, stats["mean"])
            assign(self.running_var, stats["var"])


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """Space-to-depth 2x2 with genjax's channel order ``(2 di + dj) * C + c`` (NCHW)."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 3, 5, 1, 2, 4)
    return x.reshape(b, 4 * c, h // 2, w // 2)


class RealNVP(nn.Module):
    """The multi-scale flow ``x -> (latent parts, log|det|)`` in training mode."""

    def __init__(self, shape: tuple[int, int, int], num_scales: int, features: int,
                 num_blocks: int):
        super().__init__()
        height, width, channels = shape
        self.steps = nn.ModuleList()  # per scale: [checker steps, channel steps]
        self.names: list[list[list[str]]] = []
        c, size = channels, (height, width)

        def couplings(mask, parities, prefix, c, size):
            mods, names = nn.ModuleList(), []
            for i, parity in enumerate(parities):
                mods.append(AffineCoupling(mask, parity, c, size, features, num_blocks))
                mods.append(BatchNormBijector(c))
                names += [f"{prefix}_{mask}{i}", f"{prefix}_{mask}{i}_norm"]
            return mods, names

        for i in range(num_scales - 1):
            checker, n1 = couplings("checkerboard", (0, 1, 0), f"scale{i}", c, size)
            size = (size[0] // 2, size[1] // 2)
            c *= 4
            channel, n2 = couplings("channel", (0, 1, 0), f"scale{i}", c, size)
            self.steps.append(nn.ModuleList([checker, channel]))
            self.names.append([n1, n2])
            c //= 2
        final, n3 = couplings("checkerboard", (0, 1, 0, 1), f"scale{num_scales - 1}", c, size)
        self.final, self.final_names = final, n3

    @staticmethod
    def _run(mods, h, total):
        for mod in mods:
            h, log_det = mod(h)
            total = total + log_det
        return h, total

    def forward(self, x):
        total = torch.zeros(x.shape[0], device=x.device)
        parts = []
        for checker, channel in self.steps:
            h, total = self._run(checker, x, total)
            h, total = self._run(channel, squeeze(h), total)
            x, z = h.chunk(2, dim=1)
            parts.append(z)
        h, total = self._run(self.final, x, total)
        return [h, *parts], total

    def load(self, params: dict, stats: dict) -> None:
        pairs = [(m, n) for (checker, channel), (n1, n2) in zip(self.steps, self.names, strict=True)
                 for m, n in [*zip(checker, n1, strict=True), *zip(channel, n2, strict=True)]]
        pairs += list(zip(self.final, self.final_names, strict=True))
        for mod, name in pairs:
            if isinstance(mod, BatchNormBijector):
                mod.load(params[name], stats.get(name))
            else:
                mod.load(params[name])


class RealNVPTwin(Twin):
    """Twin of ``RealNVPMethod`` (image architecture, batch-norm bijectors)."""

    losses = {"loss": "loss"}

    def __init__(self, method, **kwargs):
        super().__init__(method, **kwargs)
        cfg = self.config.model
        if cfg.architecture != "image" or cfg.norm != "batchnorm":
            raise UnsupportedConfig(
                f"model.architecture={cfg.architecture!r}, model.norm={cfg.norm!r}: the Real NVP "
                "twin is the image flow with batch normalization")
        self.flow = RealNVP(tuple(self.data.shape), cfg.num_scales, cfg.features,
                            cfg.num_blocks).to(self.device)
        self.alpha = cfg.logit_alpha
        self.num_dims = int(np.prod(self.data.shape))
        self.opt = None

    def load(self, state) -> None:
        model = jax.device_get(state.models["flow"])
        self.flow.load(model.params, dict(model.collections.get("batch_stats", {})))
        self.opt = OptaxAdam(self.flow.parameters(), self.config.optim,
                             self.config.train.num_steps)

    def genjax_inputs(self, state, host_batch):
        keys = state.step_keys("dequantize")
        x = self.method.prepare(keys["dequantize"], jnp.asarray(host_batch["image"]))
        return {"x": self.tensor(x).permute(0, 3, 1, 2).contiguous()}

    def draw_inputs(self, host_batch):
        images = self.tensor(host_batch["image"]).permute(0, 3, 1, 2)
        return {"x": preprocess(images, "dequantize", self.data.num_bits, self.rng).contiguous()}

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x)`` in nats per example of dequantized ``x`` (NCHW, in [0, 1)), logit
        Jacobian included; batch norm in training mode (batch statistics)."""
        a = self.alpha
        s = a + (1.0 - 2.0 * a) * x
        log_s, log_1ms = torch.log(s), torch.log1p(-s)
        y = log_s - log_1ms
        log_det_pre = (math.log1p(-2.0 * a) - log_s - log_1ms).sum((1, 2, 3))
        with self.autocast():
            parts, log_det = self.flow(y)
        prior = sum((-0.5 * (p.float() ** 2 + _LOG_2PI)).sum((1, 2, 3)) for p in parts)
        return prior + log_det + log_det_pre

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean bits/dim of the 8-bit data (``D log 256`` added to the continuous NLL)."""
        d = self.num_dims
        nll = -self.log_likelihood(x) + d * self.data.num_bits * math.log(2)
        return (nll / (d * math.log(2))).mean()

    def train_step(self, inputs):
        self.opt.zero_grad()
        loss = self.loss(inputs["x"])
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach()}
