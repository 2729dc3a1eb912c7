"""PyTorch twin of :class:`genjax.methods.cyclegan.CycleGANMethod` (views of one dataset).

Networks: the ResNet generator (reflection padding, instance norm without affine parameters,
stride-2 3x3 convs down, 3x3 transposed convs up with Flax's ``"SAME"`` alignment: torch's
``padding=0`` output cropped to twice the size) and the PatchGAN discriminator (4x4 convs,
padding 1, leaky ReLU 0.2, instance norm between the first and the last layer). One step is
genjax's: the generators G: X -> Y and F: Y -> X updated together against the current
discriminators (adversarial + lambda_cyc * cycle + lambda_identity * lambda_cyc * identity), then
D_X and D_Y each updated on its real images and on the generated ones passed through its history
pool (the reference ``ImagePool`` per group of batch rows, as ``genjax.train.history_pool``:
stored while filling, then a stored image returned and replaced with probability 0.5). The even
rows of the batch are domain X, the odd rows Y (genjax's ``critic_parts``).
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
from .convert import assign, load_conv, load_conv_transpose


def instance_norm(x: torch.Tensor) -> torch.Tensor:
    return F.instance_norm(x, eps=1e-5)


class ResnetBlock(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.conv0 = nn.Conv2d(features, features, 3)
        self.conv1 = nn.Conv2d(features, features, 3)

    def forward(self, x):
        h = F.relu(instance_norm(self.conv0(F.pad(x, (1, 1, 1, 1), mode="reflect"))))
        return x + instance_norm(self.conv1(F.pad(h, (1, 1, 1, 1), mode="reflect")))


class ResnetGenerator(nn.Module):
    """Twin of :class:`genjax.models.translation.ResnetGenerator`."""

    def __init__(self, channels: int, base_features: int, num_downsamples: int, num_blocks: int):
        super().__init__()
        f = base_features
        self.conv_in = nn.Conv2d(channels, f, 7)
        self.downs = nn.ModuleList(nn.Conv2d(f * 2**i, f * 2 ** (i + 1), 3, 2, 1)
                                   for i in range(num_downsamples))
        width = f * 2**num_downsamples
        self.blocks = nn.ModuleList(ResnetBlock(width) for _ in range(num_blocks))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(f * 2 ** (i + 1), f * 2**i, 3, 2, 0)
                                 for i in reversed(range(num_downsamples)))
        self.conv_out = nn.Conv2d(f, channels, 7)

    def forward(self, x):
        h = F.relu(instance_norm(self.conv_in(F.pad(x, (3, 3, 3, 3), mode="reflect"))))
        for down in self.downs:
            h = F.relu(instance_norm(down(h)))
        for block in self.blocks:
            h = block(h)
        for up in self.ups:
            size = (2 * h.shape[2], 2 * h.shape[3])
            h = F.relu(instance_norm(up(h)[:, :, : size[0], : size[1]]))
        return torch.tanh(self.conv_out(F.pad(h, (3, 3, 3, 3), mode="reflect"))).float()

    def load(self, params: dict) -> None:
        load_conv(self.conv_in, params["Conv_0"])
        for i, down in enumerate(self.downs):
            load_conv(down, params[f"Conv_{i + 1}"])
        for i, block in enumerate(self.blocks):
            load_conv(block.conv0, params[f"ResnetBlock_{i}"]["Conv_0"])
            load_conv(block.conv1, params[f"ResnetBlock_{i}"]["Conv_1"])
        for i, up in enumerate(self.ups):
            load_conv_transpose(up, params[f"ConvTranspose_{i}"])
        load_conv(self.conv_out, params[f"Conv_{len(self.downs) + 1}"])


class PatchGANDiscriminator(nn.Module):
    """Twin of :class:`genjax.models.translation.PatchGANDiscriminator` (instance norm)."""

    def __init__(self, channels: int, base_features: int, num_layers: int):
        super().__init__()
        f = base_features
        self.convs = nn.ModuleList([nn.Conv2d(channels, f, 4, 2, 1)])
        prev = f
        for n in range(1, num_layers + 1):
            out = f * min(2**n, 8)
            self.convs.append(nn.Conv2d(prev, out, 4, 2 if n < num_layers else 1, 1))
            prev = out
        self.convs.append(nn.Conv2d(prev, 1, 4, 1, 1))

    def forward(self, x):
        h = F.leaky_relu(self.convs[0](x), 0.2)
        for conv in self.convs[1:-1]:
            h = F.leaky_relu(instance_norm(conv(h)), 0.2)
        return self.convs[-1](h).float()

    def load(self, params: dict) -> None:
        for i, conv in enumerate(self.convs):
            load_conv(conv, params[f"Conv_{i}"])


class HistoryPool:
    """The reference ``ImagePool`` per group of batch rows (genjax.train.history_pool), with
    given draws: ``u`` (swap if < 0.5) and ``index``. ``images``: (groups, size, C, H, W)."""

    def __init__(self, images: torch.Tensor, count: list[int]):
        self.images, self.count = images, [int(c) for c in count]

    def query(self, images: torch.Tensor, u: list[float], index: list[int]) -> torch.Tensor:
        groups, size = self.images.shape[:2]
        if size == 0:
            return images
        per_group, out = images.shape[0] // groups, []
        for i in range(images.shape[0]):
            image, g = images[i], i // per_group
            if self.count[g] < size:
                self.images[g, self.count[g]] = image
                self.count[g] += 1
                out.append(image)
            elif u[i] < 0.5:
                out.append(self.images[g, index[i]].clone())
                self.images[g, index[i]] = image
            else:
                out.append(image)
        return torch.stack(out)


def to_domain(images: torch.Tensor, domain: str, max_value: float) -> torch.Tensor:
    """:func:`genjax.data.domains.to_domain` on NCHW tensors."""
    if domain == "original":
        return images
    if domain == "inverted":
        return max_value - images
    if domain == "rot90":
        return torch.rot90(images, 1, dims=(2, 3))
    if domain == "thick":
        h, w = images.shape[2], images.shape[3]
        p = F.pad(images, (1, 1, 1, 1), mode="replicate")
        out = p[:, :, 1 : h + 1, 1 : w + 1]
        for s in (p[:, :, :h, 1 : w + 1], p[:, :, 2:, 1 : w + 1], p[:, :, 1 : h + 1, :w],
                  p[:, :, 1 : h + 1, 2:]):
            out = torch.maximum(out, s)
        return out
    raise UnsupportedConfig(f"model.domains: {domain!r} has no twin view")


class CycleGANTwin(Twin):
    """Twin of ``CycleGANMethod`` with ``model.domains`` views of one dataset."""

    losses = {"generator_loss": "generator/loss", "discriminator_x_loss": "discriminator_x/loss",
              "discriminator_y_loss": "discriminator_y/loss"}

    def __init__(self, method, **kwargs):
        super().__init__(method, **kwargs)
        cfg = self.config.model
        if cfg.domain_b_dataset:
            raise UnsupportedConfig("model.domain_b_dataset (two datasets) has no twin")
        c = self.data.shape[-1]
        make_g = lambda: ResnetGenerator(c, cfg.base_features, cfg.num_downsamples,
                                         cfg.num_blocks).to(self.device)
        make_d = lambda: PatchGANDiscriminator(c, cfg.discriminator_features,
                                               cfg.discriminator_layers).to(self.device)
        self.g_xy, self.g_yx, self.d_x, self.d_y = make_g(), make_g(), make_d(), make_d()
        self.lsgan = cfg.adversarial_loss == "least_squares"
        self.pools: dict[str, HistoryPool] = {}
        self.opts: dict[str, OptaxAdam] = {}

    def load(self, state) -> None:
        models = jax.device_get(state.models)
        cfg, steps = self.config, self.config.train.num_steps
        for name in ("g_xy", "g_yx", "d_x", "d_y"):
            genjax_name = {"g_xy": "generator_xy", "g_yx": "generator_yx",
                           "d_x": "discriminator_x", "d_y": "discriminator_y"}[name]
            module = getattr(self, name)
            module.load(models[genjax_name].params)
            self.opts[name] = OptaxAdam(module.parameters(), cfg.optim, steps)
            if name.startswith("d_"):
                pool = models[genjax_name].collections["history_pool"]
                stored = np.asarray(pool["images"]).transpose(0, 1, 4, 2, 3)
                images = torch.zeros(stored.shape, device=self.device)
                assign(images, stored)
                self.pools[name] = HistoryPool(images, np.asarray(pool["count"]).tolist())

    # -- inputs ------------------------------------------------------------------------------
    def _pool_draws(self, key, batch: int) -> tuple[list[float], list[int]]:
        """genjax's documented draws of ``history_pool.query`` (split per image, then swap /
        index keys)."""
        size = self.config.model.pool_size

        def draw(k):
            k_swap, k_index = jax.random.split(k)
            return jax.random.uniform(k_swap), jax.random.randint(k_index, (), 0, max(size, 1))

        u, index = jax.vmap(draw)(jax.random.split(key, batch))
        return np.asarray(u).tolist(), np.asarray(index).tolist()

    def genjax_inputs(self, state, host_batch):
        images = jnp.asarray(host_batch["image"])
        half = images.shape[0] // 2  # even rows are X, odd rows Y (genjax's critic_parts)
        x = self.method.view(images[0::2], self.method.domains[0])
        y = self.method.view(images[1::2], self.method.domains[1])
        keys = state.step_keys("pool_x", "pool_y")
        return {"x": self.tensor(x).permute(0, 3, 1, 2).contiguous(),
                "y": self.tensor(y).permute(0, 3, 1, 2).contiguous(),
                "pool_x": self._pool_draws(keys["pool_x"], half),
                "pool_y": self._pool_draws(keys["pool_y"], images.shape[0] - half)}

    def draw_inputs(self, host_batch):
        images = self.tensor(host_batch["image"]).permute(0, 3, 1, 2)
        half = images.shape[0] // 2
        bits = self.data.num_bits
        max_value = float(2**bits - 1)
        x = preprocess(to_domain(images[0::2], self.method.domains[0], max_value), "symmetric",
                       bits)
        y = preprocess(to_domain(images[1::2], self.method.domains[1], max_value), "symmetric",
                       bits)
        size = max(self.config.model.pool_size, 1)
        draws = {}
        for name, n in (("pool_x", half), ("pool_y", images.shape[0] - half)):
            u = torch.rand(n, generator=self.rng, device=self.device)
            index = torch.randint(size, (n,), generator=self.rng, device=self.device)
            draws[name] = (u.tolist(), index.tolist())
        return {"x": x.contiguous(), "y": y.contiguous(), **draws}

    # -- the step ----------------------------------------------------------------------------
    def _adversarial(self, scores):
        if self.lsgan:  # 2 * least_squares_generator_loss = mean((D(G(x)) - 1)^2)
            return ((scores - 1.0) ** 2).mean()
        return F.binary_cross_entropy_with_logits(scores, torch.ones_like(scores))

    def _discriminator_loss(self, real_scores, fake_scores):
        if self.lsgan:
            return 0.5 * ((real_scores - 1.0) ** 2).mean() + 0.5 * (fake_scores**2).mean()
        return 0.5 * (F.binary_cross_entropy_with_logits(real_scores, torch.ones_like(real_scores))
                      + F.binary_cross_entropy_with_logits(fake_scores,
                                                           torch.zeros_like(fake_scores)))

    def train_step(self, inputs):
        cfg = self.config.model
        x, y = inputs["x"], inputs["y"]
        for d in (self.d_x, self.d_y):
            d.requires_grad_(False)
        try:
            self.opts["g_xy"].zero_grad()
            self.opts["g_yx"].zero_grad()
            with self.autocast():
                fake_y, fake_x = self.g_xy(x), self.g_yx(y)
                adversarial = (self._adversarial(self.d_y(fake_y))
                               + self._adversarial(self.d_x(fake_x)))
                cycle = (self.g_yx(fake_y) - x).abs().mean() + (self.g_xy(fake_x) - y).abs().mean()
                identity = (self.g_xy(y) - y).abs().mean() + (self.g_yx(x) - x).abs().mean()
            g_loss = (adversarial + cfg.lambda_cyc * cycle
                      + cfg.lambda_identity * cfg.lambda_cyc * identity)
            g_loss.backward()
            self.opts["g_xy"].step()
            self.opts["g_yx"].step()
        finally:
            for d in (self.d_x, self.d_y):
                d.requires_grad_(True)
        losses = {"generator_loss": g_loss.detach()}
        for name, real, fake, draws in (("d_x", x, fake_x, inputs["pool_x"]),
                                        ("d_y", y, fake_y, inputs["pool_y"])):
            pooled = self.pools[name].query(fake.detach().float(), *draws)
            d, opt = getattr(self, name), self.opts[name]
            opt.zero_grad()
            with self.autocast():
                loss = self._discriminator_loss(d(real), d(pooled))
            loss.backward()
            opt.step()
            losses[f"discriminator_{name[2:]}_loss"] = loss.detach()
        return losses
