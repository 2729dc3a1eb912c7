"""PyTorch twins of PixelCNN and the (class-conditional) Gated PixelCNN of
:class:`genjax.methods.autoregressive.AutoregressiveMethod`.

Masked convolutions multiply the kernel by genjax's own :func:`genjax.models.pixelcnn.causal_mask`
(converted to OIHW) at every call, as genjax does, so the masked weights receive the same (zero)
gradients. PixelCNN: a 7x7 type-A conv, residual blocks (ReLU, 1x1, ReLU, kxk type B, ReLU, 1x1,
add), the ReLU / 1x1 / ReLU / 1x1 output head (van den Oord et al. 2016b). Gated PixelCNN:
vertical stack ``(k//2 + 1, k)`` convs padded above, its output shifted down one row into the
horizontal stack through a 1x1 conv, ``(1, k)`` masked horizontal convs, gated tanh x sigmoid
units with the label embedding's ``V^T h`` term (van den Oord et al. 2016c, Eqs. 2 and 4).
Losses: ``bernoulli_nll`` or ``categorical_nll`` summed per image, averaged over the batch; one
Adam update (with clipping and genjax's schedule) per step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genjax.models.pixelcnn import causal_mask

from .base import Twin
from .common import OptaxAdam, UnsupportedConfig, preprocess
from .convert import assign, conv_weight, load_conv, load_dense


class MaskedConv2d(nn.Module):
    """``conv2d(x, kernel * mask)`` with 'SAME' padding (odd kernels), genjax's mask."""

    def __init__(self, in_features: int, out_features: int, kernel: tuple[int, int],
                 mask_type: str, color_channels: int = 1, num_gates: int = 1, bias: bool = True):
        super().__init__()
        mask = causal_mask(tuple(kernel), in_features, out_features, mask_type, color_channels,
                           num_gates)
        self.register_buffer("mask", torch.from_numpy(conv_weight(mask).copy()))
        self.weight = nn.Parameter(torch.empty(out_features, in_features, *kernel))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.padding = (kernel[0] // 2, kernel[1] // 2)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)

    def load(self, params: dict) -> None:
        assign(self.weight, conv_weight(params["kernel"]))
        if self.bias is not None:
            assign(self.bias, params["bias"])


class OutputHead(nn.Module):
    """ReLU, 1x1 masked conv (B), ReLU, 1x1 masked conv (B) to the logits."""

    def __init__(self, in_features: int, color_channels: int, output: str, num_values: int,
                 features: int):
        super().__init__()
        c = color_channels
        self.output, self.c, self.k = output, c, num_values
        self.hidden = MaskedConv2d(in_features, features, (1, 1), "B", c)
        n = c * num_values if output == "categorical" else c
        self.logits = MaskedConv2d(features, n, (1, 1), "B", c)

    def forward(self, h):
        out = self.logits(F.relu(self.hidden(F.relu(h))))
        if self.output == "categorical":  # (B, C * K, H, W) -> (B, H, W, C, K), genjax's order
            b, _, height, width = out.shape
            return out.permute(0, 2, 3, 1).reshape(b, height, width, self.c, self.k)
        return out

    def load(self, params: dict) -> None:
        self.hidden.load(params["hidden"])
        self.logits.load(params["logits"])


class PixelCNN(nn.Module):
    """Twin of :class:`genjax.models.pixelcnn.PixelCNN`."""

    def __init__(self, features, num_blocks, color_channels, output, num_values, output_features,
                 kernel_size, first_kernel_size):
        super().__init__()
        c, h, k0, k = color_channels, features, first_kernel_size, kernel_size
        self.input_conv = MaskedConv2d(c, 2 * h, (k0, k0), "A", c)
        self.blocks = nn.ModuleList(nn.ModuleList([
            MaskedConv2d(2 * h, h, (1, 1), "B", c),
            MaskedConv2d(h, h, (k, k), "B", c),
            MaskedConv2d(h, 2 * h, (1, 1), "B", c),
        ]) for _ in range(num_blocks))
        self.head = OutputHead(2 * h, c, output, num_values, output_features)

    def forward(self, x, labels=None):
        h = self.input_conv(x)
        for reduce, conv, expand in self.blocks:
            h = h + expand(F.relu(conv(F.relu(reduce(F.relu(h))))))
        return self.head(h)

    def load(self, params: dict) -> None:
        self.input_conv.load(params["input_conv"])
        for b, (reduce, conv, expand) in enumerate(self.blocks):
            reduce.load(params[f"block{b}_reduce"])
            conv.load(params[f"block{b}_conv"])
            expand.load(params[f"block{b}_expand"])
        self.head.load(params["head"])


class GatedPixelCNN(nn.Module):
    """Twin of :class:`genjax.models.pixelcnn.GatedPixelCNN` (optionally class-conditional)."""

    def __init__(self, features, num_layers, color_channels, output, num_values, output_features,
                 kernel_size, first_kernel_size, num_classes, embed_features):
        super().__init__()
        c, p = color_channels, features
        self.num_layers, self.p = num_layers, p
        self.embedding = nn.Embedding(num_classes, embed_features) if num_classes else None
        self.vertical, self.links, self.horizontal, self.outs = (nn.ModuleList() for _ in range(4))
        self.v_cond, self.h_cond, self.pads = nn.ModuleList(), nn.ModuleList(), []
        for layer in range(num_layers):
            k = first_kernel_size if layer == 0 else kernel_size
            pad = k // 2
            self.pads.append(pad)
            in_f = c if layer == 0 else p
            self.vertical.append(nn.Conv2d(in_f, 2 * p, (pad + 1, k)))
            self.links.append(nn.Conv2d(2 * p, 2 * p, 1))
            self.horizontal.append(
                MaskedConv2d(in_f, 2 * p, (1, k), "A" if layer == 0 else "B", c, 2))
            self.outs.append(MaskedConv2d(p, p, (1, 1), "B", c))
            if num_classes:
                self.v_cond.append(nn.Linear(embed_features, 2 * p, bias=False))
                self.h_cond.append(nn.Linear(embed_features, 2 * p, bias=False))
        self.head = OutputHead(p, c, output, num_values, output_features)

    def _gate(self, pre, cond):
        if cond is not None:
            pre = pre + cond[:, :, None, None]
        a, b = pre.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    def forward(self, x, labels=None):
        emb = None if self.embedding is None else self.embedding(labels)
        v, h = x, x
        for layer in range(self.num_layers):
            pad = self.pads[layer]
            # Rows above only: pad pad rows on top, none below; pad columns on both sides.
            v_pre = self.vertical[layer](F.pad(v, (pad, pad, pad, 0)))
            shifted = F.pad(v_pre, (0, 0, 1, 0))[:, :, :-1]  # down one row
            link = self.links[layer](shifted)
            h_pre = self.horizontal[layer](h)
            v_cond = h_cond = None
            if emb is not None:
                v_cond, h_cond = self.v_cond[layer](emb), self.h_cond[layer](emb)
            v = self._gate(v_pre, v_cond)
            out = self.outs[layer](self._gate(h_pre + link, h_cond))
            h = out if layer == 0 else h + out
        return self.head(h)

    def load(self, params: dict) -> None:
        if self.embedding is not None:
            assign(self.embedding.weight, params["label_embedding"]["embedding"])
        for layer in range(self.num_layers):
            load_conv(self.vertical[layer], params[f"vertical{layer}"])
            load_conv(self.links[layer], params[f"vertical_to_horizontal{layer}"])
            self.horizontal[layer].load(params[f"horizontal{layer}"])
            self.outs[layer].load(params[f"horizontal{layer}_out"])
            if self.embedding is not None:
                load_dense(self.v_cond[layer], params[f"vertical{layer}_cond"])
                load_dense(self.h_cond[layer], params[f"horizontal{layer}_cond"])
        self.head.load(params["head"])


class PixelCNNTwin(Twin):
    """Twin of ``AutoregressiveMethod`` for ``architecture`` pixelcnn or gated_pixelcnn."""

    losses = {"loss": "loss"}

    def __init__(self, method, **kwargs):
        super().__init__(method, **kwargs)
        cfg = self.config.model
        height, width, c = self.data.shape
        out = "bernoulli" if cfg.likelihood == "bernoulli" else "categorical"
        if cfg.likelihood not in ("bernoulli", "categorical"):
            raise UnsupportedConfig(f"model.likelihood={cfg.likelihood!r} has no twin")
        if cfg.architecture == "pixelcnn":
            self.net = PixelCNN(cfg.features, cfg.num_layers, c, out, method.num_values,
                                cfg.output_features, cfg.kernel_size, cfg.first_kernel_size)
        elif cfg.architecture == "gated_pixelcnn":
            self.net = GatedPixelCNN(cfg.features, cfg.num_layers, c, out, method.num_values,
                                     cfg.output_features, cfg.kernel_size, cfg.first_kernel_size,
                                     method.num_classes, cfg.embed_features)
        else:
            raise UnsupportedConfig(f"model.architecture={cfg.architecture!r} has no twin "
                                    "(pixelcnn and gated_pixelcnn do)")
        self.net.to(self.device)
        self.likelihood = cfg.likelihood
        self.num_values = method.num_values
        self.conditional = method.num_classes > 0
        self.opt = None

    def load(self, state) -> None:
        self.net.load(jax.device_get(state.models["model"].params))
        self.opt = OptaxAdam(self.net.parameters(), self.config.optim, self.config.train.num_steps)

    def _labels(self, host_batch):
        return self.tensor(host_batch["label"]).long() if self.conditional else None

    def _network_input(self, v: torch.Tensor) -> torch.Tensor:
        if self.likelihood == "bernoulli":
            return v.float()
        return v.float() * (2.0 / (self.num_values - 1)) - 1.0

    def genjax_inputs(self, state, host_batch):
        keys = state.step_keys("data", "dropout")
        x, target = self.method.prepare(keys["data"], jnp.asarray(host_batch["image"]), train=True)
        x = self.tensor(x).permute(0, 3, 1, 2).contiguous()
        target = self.tensor(np.asarray(target))
        return {"x": x, "target": target.long() if self.likelihood == "categorical" else target,
                "labels": self._labels(host_batch)}

    def draw_inputs(self, host_batch):
        images = self.tensor(host_batch["image"])  # NHWC, the target layout
        v = preprocess(images, self.config.data.preprocess, self.data.num_bits, self.rng)
        x = self._network_input(v).permute(0, 3, 1, 2).contiguous()
        return {"x": x, "target": v, "labels": self._labels(host_batch)}

    def loss(self, x, target, labels):
        """Mean over the batch of ``-log p(x)`` in nats per image (float32)."""
        with self.autocast():
            logits = self.net(x, labels)
        logits = logits.float()
        if self.likelihood == "bernoulli":  # logits (B, C, H, W); target NHWC
            nll = F.binary_cross_entropy_with_logits(
                logits, target.permute(0, 3, 1, 2).float(), reduction="none")
            return nll.sum((1, 2, 3)).mean()
        b = logits.shape[0]  # (B, H, W, C, K), target (B, H, W, C)
        nll = F.cross_entropy(logits.reshape(-1, self.num_values), target.reshape(-1),
                              reduction="none")
        return nll.reshape(b, -1).sum(1).mean()

    def train_step(self, inputs):
        self.opt.zero_grad()
        loss = self.loss(inputs["x"], inputs["target"], inputs["labels"])
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach()}
