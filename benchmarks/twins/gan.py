"""PyTorch twin of :class:`genjax.methods.gan.GANMethod` with the DCGAN networks.

Variants ``gan`` (minimax discriminator loss, non-saturating or minimax generator loss), ``wgan``
(weight clipping) and ``wgan_gp`` (gradient penalty, Gulrajani et al. 2017, Alg. 1). One step is
what ``GANMethod.train_step`` does: the batch split into ``n_critic`` parts (part i: rows i,
i + n, ...), one critic update per
part on fresh ``G(z)`` (G in training mode, no gradient to G), then one generator update against
the updated critic on the last part's size; D's real and fake batches go through D separately
(batch norm statistics per batch), as in genjax.

Batch-norm running averages are updated by every training-mode call in torch, while genjax keeps
G's only from the generator update and D's only from the critic updates; training-mode outputs
(all a step uses) do not depend on them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import Twin
from .common import OptaxAdam, UnsupportedConfig, preprocess
from .convert import (
    load_batch_norm,
    load_conv,
    load_conv_transpose,
    load_dense,
    nhwc_to_nchw_columns,
    nhwc_to_nchw_rows,
    nhwc_to_nchw_vector,
)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Flax/XLA ``"SAME"`` padding (low, high) of one spatial axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with Flax's ``"SAME"`` padding for a fixed input size (may be asymmetric)."""

    def __init__(self, in_channels, out_channels, kernel, stride, size: tuple[int, int], **kw):
        pads = [same_padding(s, kernel, stride) for s in size]
        symmetric = all(lo == hi for lo, hi in pads)
        super().__init__(in_channels, out_channels, kernel, stride,
                         padding=tuple(lo for lo, _ in pads) if symmetric else 0, **kw)
        # F.pad order: (left, right, top, bottom).
        self.extra = None if symmetric else (pads[1][0], pads[1][1], pads[0][0], pads[0][1])
        self.out_size = tuple(-(-s // stride) for s in size)

    def forward(self, x):
        return super().forward(x if self.extra is None else F.pad(x, self.extra))


def _norm2d(kind: str, features: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(features, eps=1e-5, momentum=0.1)
    if kind == "none":
        return nn.Identity()
    raise UnsupportedConfig(f"norm {kind!r} has no twin (batch and none do)")


class DCGANGenerator(nn.Module):
    """Radford et al. (2016): project, batch norm, ReLU, 4x4 stride-2 transposed convs, tanh."""

    def __init__(self, latent_dim: int, shape: tuple[int, int, int], base_features: int,
                 num_stages: int, norm: str):
        super().__init__()
        height, width, channels = shape
        factor = 2**num_stages
        self.h0, self.w0 = height // factor, width // factor
        features = base_features * 2 ** (num_stages - 1)
        self.f0 = features
        size = self.h0 * self.w0 * features
        self.project = nn.Linear(latent_dim, size, bias=False)
        if norm == "batch":
            self.project_norm = nn.BatchNorm1d(size, eps=1e-5, momentum=0.1)
        elif norm == "none":
            self.project_norm = nn.Identity()
        else:
            raise UnsupportedConfig(f"model.generator_norm={norm!r} has no twin")
        self.ups, self.norms = nn.ModuleList(), nn.ModuleList()
        for _ in range(num_stages - 1):
            # Flax "SAME" for a 4x4 stride-2 transposed conv pads the dilated input by (2, 2):
            # torch's padding=1 (it pads by kernel - 1 - padding).
            self.ups.append(nn.ConvTranspose2d(features, features // 2, 4, 2, 1, bias=False))
            features //= 2
            self.norms.append(_norm2d(norm, features))
        self.out = nn.ConvTranspose2d(features, channels, 4, 2, 1)

    def forward(self, z):
        h = F.relu(self.project_norm(self.project(z)))
        h = h.view(z.shape[0], self.f0, self.h0, self.w0)
        for up, norm in zip(self.ups, self.norms, strict=True):
            h = F.relu(norm(up(h)))
        return torch.tanh(self.out(h)).float()

    def load(self, params: dict, stats: dict) -> None:
        h0, w0 = self.h0, self.w0
        load_dense(self.project, params["Dense_0"],
                   weight=nhwc_to_nchw_columns(params["Dense_0"]["kernel"], h0, w0))
        if isinstance(self.project_norm, nn.BatchNorm1d):
            load_batch_norm(self.project_norm, params["BatchNorm_0"], stats.get("BatchNorm_0"),
                            order=lambda v: nhwc_to_nchw_vector(v, h0, w0))
        for i, (up, norm) in enumerate(zip(self.ups, self.norms, strict=True)):
            load_conv_transpose(up, params[f"ConvTranspose_{i}"])
            if isinstance(norm, nn.BatchNorm2d):
                load_batch_norm(norm, params[f"norm_{i}"], stats.get(f"norm_{i}"))
        load_conv_transpose(self.out, params[f"ConvTranspose_{len(self.ups)}"])


class DCGANDiscriminator(nn.Module):
    """Strided 4x4 convs with leaky ReLU 0.2, norm on every conv but the first, one logit."""

    def __init__(self, shape: tuple[int, int, int], base_features: int, num_stages: int,
                 norm: str):
        super().__init__()
        height, width, channels = shape
        self.convs, self.norms = nn.ModuleList(), nn.ModuleList()
        size, features, prev = (height, width), base_features, channels
        for stage in range(num_stages):
            conv = SameConv2d(prev, features, 4, 2, size)
            self.convs.append(conv)
            self.norms.append(nn.Identity() if stage == 0 else _norm2d(norm, features))
            size, prev = conv.out_size, features
            features *= 2
        self.final_size = size
        self.dense = nn.Linear(size[0] * size[1] * prev, 1)

    def forward(self, x):
        h = x
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = F.leaky_relu(norm(conv(h)), 0.2)
        return self.dense(h.flatten(1))[:, 0].float()

    def load(self, params: dict, stats: dict) -> None:
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            load_conv(conv, params[f"Conv_{i}"])
            if isinstance(norm, nn.BatchNorm2d):
                load_batch_norm(norm, params[f"norm_{i}"], stats.get(f"norm_{i}"))
        load_dense(self.dense, params["Dense_0"],
                   weight=nhwc_to_nchw_rows(params["Dense_0"]["kernel"], *self.final_size))


class GANTwin(Twin):
    """Twin of ``GANMethod`` (``architecture="dcgan"``, unconditional, no D dropout)."""

    losses = {"discriminator_loss": "discriminator/loss", "generator_loss": "generator/loss"}

    def __init__(self, method, **kwargs):
        super().__init__(method, **kwargs)
        cfg = self.config.model
        if cfg.architecture != "dcgan":
            raise UnsupportedConfig(f"model.architecture={cfg.architecture!r}: the GAN twin is "
                                    "the DCGAN only")
        if cfg.variant not in ("gan", "wgan", "wgan_gp"):
            raise UnsupportedConfig(f"model.variant={cfg.variant!r} has no twin")
        if cfg.conditional:
            raise UnsupportedConfig("model.conditional=True has no twin")
        shape = tuple(self.data.shape)
        self.generator = DCGANGenerator(cfg.latent_dim, shape, cfg.base_features, cfg.num_stages,
                                        cfg.generator_norm).to(self.device)
        self.discriminator = DCGANDiscriminator(shape, cfg.base_features, cfg.num_stages,
                                                cfg.discriminator_norm).to(self.device)
        self.g_opt = self.d_opt = None

    def load(self, state) -> None:
        g = jax.device_get(state.models["generator"])
        d = jax.device_get(state.models["discriminator"])
        self.generator.load(g.params, dict(g.collections.get("batch_stats", {})))
        self.discriminator.load(d.params, dict(d.collections.get("batch_stats", {})))
        cfg, steps = self.config, self.config.train.num_steps
        self.g_opt = OptaxAdam(self.generator.parameters(), cfg.optim, steps)
        self.d_opt = OptaxAdam(self.discriminator.parameters(), cfg.optim,
                               steps * cfg.model.n_critic,
                               learning_rate=cfg.model.discriminator_learning_rate or None)

    # -- inputs ------------------------------------------------------------------------------
    def _parts(self, x: torch.Tensor) -> torch.Tensor:
        """genjax's ``critic_parts``: part ``i`` is rows ``i, i + n, ...`` of the batch."""
        n = self.config.model.n_critic
        return x.reshape(x.shape[0] // n, n, *x.shape[1:]).transpose(0, 1)

    def genjax_inputs(self, state, host_batch):
        cfg = self.config.model
        keys = state.step_keys("data", "critic", "generator", "penalty")
        x = self.method.prepare(keys["data"], jnp.asarray(host_batch["image"]))
        n, b = cfg.n_critic, x.shape[0] // cfg.n_critic
        real = self._parts(self.tensor(x).permute(0, 3, 1, 2))
        z_critic = [jax.random.normal(jax.random.fold_in(keys["critic"], i), (b, cfg.latent_dim))
                    for i in range(n)]
        eps = [jax.random.uniform(jax.random.fold_in(keys["penalty"], i), (b, 1, 1, 1),
                                  dtype=jnp.float32) for i in range(n)]
        z_gen = jax.random.normal(keys["generator"], (b, cfg.latent_dim))
        return {"real": real.contiguous(), "z_critic": self.tensor(np.stack(z_critic)),
                "eps": self.tensor(np.stack(eps)), "z_generator": self.tensor(z_gen)}

    def draw_inputs(self, host_batch):
        cfg = self.config.model
        images = self.tensor(host_batch["image"]).permute(0, 3, 1, 2)
        x = preprocess(images, self.config.data.preprocess, self.data.num_bits, self.rng)
        real = self._parts(x).contiguous()
        n, b = real.shape[:2]
        g = self.rng
        return {"real": real,
                "z_critic": torch.randn((n, b, cfg.latent_dim), generator=g, device=self.device),
                "eps": torch.rand((n, b, 1, 1, 1), generator=g, device=self.device),
                "z_generator": torch.randn((b, cfg.latent_dim), generator=g, device=self.device)}

    # -- the step ----------------------------------------------------------------------------
    def critic_loss(self, real, fake, eps):
        cfg = self.config.model
        with self.autocast():
            r, f = self.discriminator(real), self.discriminator(fake)
        if cfg.variant == "gan":
            return (F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
                    + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)))
        loss = f.mean() - r.mean()
        if cfg.variant == "wgan_gp":
            x_hat = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
            with self.autocast():
                scores = self.discriminator(x_hat)
            (grads,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
            norm = torch.linalg.vector_norm(grads.flatten(1), dim=1)
            loss = loss + cfg.gp_weight * ((norm - 1.0) ** 2).mean()
        return loss

    def generator_loss(self, fake_scores):
        cfg = self.config.model
        if cfg.variant in ("wgan", "wgan_gp"):
            return -fake_scores.mean()
        if cfg.generator_loss == "minimax":
            return -F.softplus(fake_scores).mean()  # mean log(1 - D(G(z)))
        return F.binary_cross_entropy_with_logits(fake_scores, torch.ones_like(fake_scores))

    def train_step(self, inputs):
        cfg = self.config.model
        real, z_critic, eps = inputs["real"], inputs["z_critic"], inputs["eps"]
        for i in range(cfg.n_critic):
            with torch.no_grad(), self.autocast():
                fake = self.generator(z_critic[i])
            self.d_opt.zero_grad()
            d_loss = self.critic_loss(real[i], fake, eps[i])
            d_loss.backward()
            self.d_opt.step()
            if cfg.variant == "wgan":
                with torch.no_grad():
                    for p in self.discriminator.parameters():
                        p.clamp_(-cfg.clip_value, cfg.clip_value)
        self.discriminator.requires_grad_(False)  # no D gradients in the generator update
        try:
            self.g_opt.zero_grad()
            with self.autocast():
                scores = self.discriminator(self.generator(inputs["z_generator"]))
            g_loss = self.generator_loss(scores)
            g_loss.backward()
            self.g_opt.step()
        finally:
            self.discriminator.requires_grad_(True)
        return {"discriminator_loss": d_loss.detach(), "generator_loss": g_loss.detach()}
