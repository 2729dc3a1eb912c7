"""Throughput of the adversarial updates: discriminator (critic) steps and generator steps.

    python benchmarks/bench_gan.py                                   # all variants, MLP, digits
    python benchmarks/bench_gan.py --architectures mlp dcgan --batch 64 --steps 200
    python benchmarks/bench_gan.py --config dcgan_mnist --variants gan wgan_gp \
        --set data.manual_dir=../shared/data/mnist --out bench_gan_mnist.json

Each row is one variant (``gan``, ``wgan``, ``wgan_gp``, ``bigan``, ``cgan`` = conditional gan)
with one architecture, on the model and data of ``--config`` (default ``dcgan_digits``) with
only the variant and architecture changed. Three timings, each over ``--steps`` calls after
``--warmup`` calls (compilation excluded and reported apart):

* D step: one jitted :meth:`GANMethod.critic_update` on ``--batch`` real images (G forward, D
  forward/backward, WGAN-GP's double backward, the optimizer update), device-resident inputs;
* G step: one jitted :meth:`GANMethod.generator_update` (with BiGAN's encoder) on ``--batch``;
* engine step: the real loop's step (``n_critic`` D steps + 1 G step on ``n_critic x --batch``
  images, host->device batch transfer and the per-step metric fetch included).

Reports, never asserts.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax
from _report import report

from genjax.experiments import load_config
from genjax.train.loop import Trainer

VARIANTS = {  # name -> GANConfig fields
    "gan": {"variant": "gan"},
    "wgan": {"variant": "wgan", "n_critic": 5},
    "wgan_gp": {"variant": "wgan_gp", "n_critic": 5, "discriminator_norm": "layer"},
    "bigan": {"variant": "bigan"},
    "cgan": {"variant": "gan", "conditional": True},
}
HEADER = ["variant", "architecture", "batch", "n_critic", "compile_s", "d_steps_per_s",
          "d_ms_per_step", "g_steps_per_s", "g_ms_per_step", "engine_steps_per_s",
          "engine_examples_per_s"]


def _timed(fn, args_fn, steps: int, warmup: int) -> tuple[float, float]:
    """(compile + first call seconds, seconds per call) of ``fn(*args_fn())``, chained."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args_fn()))
    compile_s = time.perf_counter() - t0
    for _ in range(warmup):
        jax.block_until_ready(fn(*args_fn()))
    t0 = time.perf_counter()
    for _ in range(steps):
        jax.block_until_ready(fn(*args_fn()))
    return compile_s, (time.perf_counter() - t0) / steps


def bench(base, variant: str, architecture: str, batch: int, steps: int, warmup: int) -> dict:
    fields = dict(VARIANTS[variant], architecture=architecture)
    model = dataclasses.replace(base.model, **fields)
    train = dataclasses.replace(base.train, batch_size=batch * model.n_critic, progress=False)
    config = dataclasses.replace(base, model=model, train=train)
    trainer = Trainer(config, None)
    method = trainer.method
    raw = trainer.iterator.batch_at(0)
    real = method.prepare(jax.random.key(1), jax.numpy.asarray(raw["image"][:batch]))
    labels = jax.numpy.asarray(raw["label"][:batch]) if method.num_classes else None
    models = dict(trainer.state.models)
    key = jax.random.key(2)

    critic = jax.jit(method.critic_update)
    generator = jax.jit(method.generator_update)

    def critic_call(*args):
        models["discriminator"], metrics = critic(*args)  # chained: each call updates D
        return metrics

    def generator_call(*args):
        new, metrics = generator(*args)
        models.update(new)
        return metrics

    d_compile, d_s = _timed(critic_call, lambda: (models, real, labels, key, key), steps, warmup)
    g_compile, g_s = _timed(generator_call, lambda: (models, real, labels, key), steps, warmup)
    e_compile, e_s = _timed(trainer.step, lambda: (), max(1, steps // model.n_critic), warmup)
    return {
        "variant": variant,
        "architecture": architecture,
        "batch": batch,
        "n_critic": model.n_critic,
        "compile_s": round(d_compile + g_compile + e_compile, 2),
        "d_steps_per_s": round(1 / d_s, 1),
        "d_ms_per_step": round(1000 * d_s, 3),
        "g_steps_per_s": round(1 / g_s, 1),
        "g_ms_per_step": round(1000 * g_s, 3),
        "engine_steps_per_s": round(1 / e_s, 1),
        "engine_examples_per_s": round(config.train.batch_size / e_s, 1),
        "dataset": config.data.name,
        "devices": trainer.mesh.devices.size,
        "device_kind": jax.devices()[0].device_kind,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="dcgan_digits", help="model and data to start from")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--architectures", nargs="+", default=["mlp"], choices=["mlp", "dcgan"])
    p.add_argument("--batch", type=int, default=64, help="real images per D or G update")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--out", default="bench_gan.json")
    args = p.parse_args()
    base = load_config(args.config, args.overrides)
    rows = []
    for arch in args.architectures:
        for variant in args.variants:
            if variant == "bigan" and arch != "mlp":
                continue  # BiGAN uses the MLP networks
            rows.append(bench(base, variant, arch, args.batch, args.steps, args.warmup))
            print(rows[-1], flush=True)
    report({"adversarial updates": (HEADER, rows)}, args.out)


if __name__ == "__main__":
    main()
