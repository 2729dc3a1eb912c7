"""PyTorch twin of :class:`genjax.methods.vae.VAEMethod` with the MLP encoder and decoder.

The objective is the ELBO with S reparameterized samples (Kingma & Welling 2014, Eq. 10), as
``VAEMethod.objective`` computes it: ``z = mean + exp(log_var / 2) * eps``, a Bernoulli (or
Gaussian with a learned per-pixel log-variance) decoder, the closed-form Gaussian KL, loss
``-mean_x elbo``. One Adam update per step.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genjax.losses import reparameterize

from .base import Twin
from .common import OptaxAdam, UnsupportedConfig, preprocess
from .convert import assign, load_dense

ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": F.relu,
    "elu": F.elu,
    "gelu": lambda x: F.gelu(x, approximate="tanh"),  # flax's nn.gelu is the tanh approximation
    "swish": F.silu,
}
_LOG_2PI = math.log(2 * math.pi)


class MLPVAE(nn.Module):
    """``MLPEncoder`` + ``MLPDecoder`` of :mod:`genjax.models.vae` (flattened NHWC pixels)."""

    def __init__(self, num_pixels: int, latent_dim: int, hidden: tuple[int, ...],
                 activation: str, likelihood: str):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise UnsupportedConfig(f"model.activation={activation!r} has no twin")
        self.act = ACTIVATIONS[activation]
        widths = [num_pixels, *hidden]
        pairs = zip(widths, widths[1:], strict=False)
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        self.mean = nn.Linear(widths[-1], latent_dim)
        self.log_var = nn.Linear(widths[-1], latent_dim)
        back = [latent_dim, *reversed(hidden)]
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(back, back[1:], strict=False))
        self.out = nn.Linear(back[-1], num_pixels)
        self.likelihood = likelihood
        if likelihood == "gaussian":
            self.pixel_log_var = nn.Parameter(torch.zeros(num_pixels))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x
        for layer in self.encoder:
            h = self.act(layer(h))
        return self.mean(h).float(), self.log_var(h).float()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        for layer in self.decoder:
            h = self.act(layer(h))
        return self.out(h).float()


class VAETwin(Twin):
    """Twin of ``VAEMethod`` (``architecture="mlp"``, ``objective="elbo"``)."""

    losses = {"loss": "loss"}

    def __init__(self, method, **kwargs):
        super().__init__(method, **kwargs)
        cfg = self.config.model
        if cfg.architecture != "mlp":
            raise UnsupportedConfig(f"model.architecture={cfg.architecture!r}: the VAE twin is "
                                    "the MLP VAE only")
        if cfg.objective != "elbo":
            raise UnsupportedConfig(f"model.objective={cfg.objective!r}: the VAE twin trains "
                                    "the ELBO only")
        self.num_pixels = int(np.prod(self.data.shape))
        self.model = MLPVAE(self.num_pixels, cfg.latent_dim, tuple(cfg.hidden), cfg.activation,
                            cfg.likelihood).to(self.device)
        self.opt = None

    def load(self, state) -> None:
        params = jax.device_get(state.models["vae"].params)
        enc, dec = params["encoder"], params["decoder"]
        for i, layer in enumerate(self.model.encoder):
            load_dense(layer, enc[f"Dense_{i}"])
        load_dense(self.model.mean, enc["mean"])
        load_dense(self.model.log_var, enc["log_var"])
        for i, layer in enumerate(self.model.decoder):
            load_dense(layer, dec[f"Dense_{i}"])
        load_dense(self.model.out, dec["out"])
        if self.model.likelihood == "gaussian":
            log_var = np.asarray(dec["_DecoderHead_0"]["log_var"]).reshape(-1)
            assign(self.model.pixel_log_var, log_var)
        self.opt = OptaxAdam(self.model.parameters(), self.config.optim,
                             self.config.train.num_steps)

    def genjax_inputs(self, state, host_batch):
        keys = state.step_keys("data", "latents")
        x = self.method.prepare(keys["data"], jnp.asarray(host_batch["image"]), train=True)
        b, latent = x.shape[0], self.config.model.latent_dim
        zeros = jnp.zeros((b, latent), jnp.float32)
        # reparameterize(key, 0, 0) is the standard-normal eps genjax's step draws with this key.
        eps = reparameterize(keys["latents"], zeros, zeros,
                             num_samples=self.config.model.num_samples)
        return {"x": self.tensor(x).reshape(b, -1), "eps": self.tensor(eps)}

    def draw_inputs(self, host_batch):
        images = self.tensor(host_batch["image"])
        x = preprocess(images, self.config.data.preprocess, self.data.num_bits, self.rng)
        b = x.shape[0]
        eps = torch.randn((self.config.model.num_samples, b, self.config.model.latent_dim),
                          generator=self.rng, device=self.device)
        return {"x": x.reshape(b, -1), "eps": eps}

    def loss(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``-mean_x ELBO(x)`` in nats (float32 reductions)."""
        with self.autocast():
            mean, log_var = self.model.encode(x)
            z = mean + torch.exp(0.5 * log_var) * eps  # (S, B, L)
            out = self.model.decode(z)  # (S, B, D)
        target = x.expand_as(out)
        if self.model.likelihood == "bernoulli":
            log_lik = -F.binary_cross_entropy_with_logits(out, target, reduction="none").sum(-1)
        else:
            lv = self.model.pixel_log_var
            log_lik = (-0.5 * (_LOG_2PI + lv + (target - out) ** 2 * torch.exp(-lv))).sum(-1)
        kl = 0.5 * (torch.expm1(log_var) - log_var + mean**2).sum(-1)
        return -(log_lik.mean(0) - kl).mean()

    def train_step(self, inputs):
        self.opt.zero_grad()
        loss = self.loss(inputs["x"], inputs["eps"])
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach()}

    def forward_outputs(self, x: torch.Tensor, eps: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encoder mean/log-variance and decoder output at ``z(eps)`` (for the converter tests)."""
        with torch.no_grad():
            mean, log_var = self.model.encode(x)
            out = self.model.decode(mean + torch.exp(0.5 * log_var) * eps)
        return {"mean": mean, "log_var": log_var, "decoder": out}
