"""Which translation StarGAN's objective keeps, by the generator it starts from (issue 18).

    python benchmarks/stargan_basins.py --init paired --steps 2000 --out basins_paired.json
    python benchmarks/stargan_basins.py --init identity --steps 3000
    python benchmarks/stargan_basins.py --init random --steps 2000 --set train.seed=1

A diagnostic, not a training recipe. ``stargan_digits`` (or ``--config``) is built as
``genjax train`` would build it; its generator is then started from one of:

* ``random``: the config's initialisation (what ``genjax train`` does);
* ``identity``: trained to copy its input, ``|G(x, c') - x|`` for random source and target
  domains (no paired information: "start from doing nothing");
* ``paired``: trained on the ground truth, ``|G(x, c') - view(x, c')|`` for random source and
  target domains of the same digit (the translation the evaluation scores as right).

The pre-training is ``--init-steps`` Adam steps (learning rate ``--init-learning-rate``) on the
training batches of the run; a fresh discriminator and fresh optimizer states then go through
``--steps`` steps of StarGAN's own objective (``Trainer.train``). The evaluation (label
preservation per ordered pair, pixel and cycle L1, domain accuracy) runs after the pre-training
and at the end, with the classifiers of ``--classifier-workdir`` and
``--domain-classifier-workdir`` (trained here with their configs when missing: about two
minutes on 2 CPU cores).

If the objective preferred another map, training from the paired start would drift away from
it; if it holds the paired start, the failure of the random start is the basin the
optimisation falls into, not the objective. Prints one line per evaluation; ``--out`` writes
every metric as JSON. Reports, never asserts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax.experiments import load_config
from genjax.train.loop import Trainer
from genjax.train.state import ModelState

INITS = ("random", "identity", "paired")
LOCAL = ("original", "inverted", "thick")
CLASSIFIER_CONFIGS = {"classifier": "classifier_digits_domains",
                      "domain_classifier": "classifier_digits_domains_by_domain"}


def ensure_classifier(workdir: Path, config: str) -> None:
    """Trains ``config`` into ``workdir`` unless a run with checkpoints is there already."""
    if (workdir / "checkpoints").is_dir():
        return
    print(f"training {config} into {workdir} ...", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, "-m", "genjax.cli", "train", config, "--workdir",
                           str(workdir), "--set", "train.progress=false"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"stargan_basins.py: error: training {config} failed:\n{done.stderr[-2000:]}")


def pretrain_generator(trainer: Trainer, init: str, steps: int, learning_rate: float):
    """The generator's parameters after ``steps`` Adam steps towards ``init``'s target, and the
    last batch's mean L1."""
    method = trainer.method
    params = trainer.state.models["generator"].params
    tx = optax.adam(learning_rate)
    opt = tx.init(params)
    k = method.num_domains

    @jax.jit
    def step(params, opt, pixels, key):
        k_source, k_target = jax.random.split(key)
        c = jax.random.randint(k_source, (pixels.shape[0],), 0, k)
        t = jax.random.randint(k_target, (pixels.shape[0],), 0, k)
        x = method._views_of(pixels, c)
        y = x if init == "identity" else method._views_of(pixels, t)
        loss, grads = jax.value_and_grad(
            lambda p: jnp.mean(jnp.abs(method._generate(p, x, t) - y)))(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt, loss

    key, loss = jax.random.key(trainer.config.train.seed + 1), float("nan")
    for s in range(steps):
        pixels = jnp.asarray(trainer.host_batch(s)["image"])
        params, opt, loss = step(params, opt, pixels, jax.random.fold_in(key, s))
    return params, float(loss)


def summary(metrics: dict, domains: tuple[str, ...]) -> dict:
    """Label preservation per ordered pair and its means (the 6 pairs of LOCAL, all pairs)."""
    def label(a, b):
        return metrics.get(f"label_accuracy_{a}_to_{b}")

    pairs = {f"{a}->{b}": label(a, b) for a in domains for b in domains if a != b}
    local = [label(a, b) for a in LOCAL for b in LOCAL if a != b and a in domains and b in domains]
    return {"label_mean_local_pairs": float(np.mean(local)) if local else None,
            "label_mean_all_pairs": float(np.mean(list(pairs.values()))),
            "label_per_pair": pairs}


def evaluate(trainer: Trainer, tag: str) -> dict:
    metrics = trainer.evaluate()
    out = summary(metrics, trainer.method.domains)
    pairs = " ".join(f"{k} {v:.2f}" for k, v in out["label_per_pair"].items())
    local = out["label_mean_local_pairs"]
    extra = ", ".join(f"{name} {metrics[key]:.3f}" for name, key in (
        ("domain accuracy", "domain_accuracy"), ("pixel L1", "pixel_l1"),
        ("doing nothing", "pixel_l1_identity_baseline"), ("cycle L1", "cycle_l1"))
        if isinstance(metrics.get(key), float))
    print(f"{tag}: label preservation {'-' if local is None else f'{local:.3f}'} over the "
          f"pairs of {'/'.join(LOCAL)}, {out['label_mean_all_pairs']:.3f} over all; {extra}; "
          f"{pairs}", flush=True)
    return {"summary": out, "metrics": metrics}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="stargan_digits")
    p.add_argument("--init", choices=INITS, default="paired")
    p.add_argument("--init-steps", type=int, default=1500)
    p.add_argument("--init-learning-rate", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=2000, help="StarGAN steps after the start")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--classifier-workdir", default="runs/clf_digits_domains")
    p.add_argument("--domain-classifier-workdir", default="runs/clf_digits_domains_by_domain")
    p.add_argument("--out", default=None, help="write every metric here as JSON")
    args = p.parse_args(argv)
    for name in ("init_steps", "steps"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    workdirs = {"classifier": Path(args.classifier_workdir),
                "domain_classifier": Path(args.domain_classifier_workdir)}
    for field, workdir in workdirs.items():
        ensure_classifier(workdir, CLASSIFIER_CONFIGS[field])
    steps = max(args.steps, 1)
    config = load_config(args.config, [
        "train.progress=false", f"train.num_steps={steps}", f"train.log_every={steps}",
        "train.steps_per_dispatch=10", f"model.classifier_workdir={workdirs['classifier']}",
        f"model.domain_classifier_workdir={workdirs['domain_classifier']}", *args.overrides])
    trainer = Trainer(config, None)
    report = {"command": " ".join(sys.argv), "config": args.config, "init": args.init,
              "init_steps": args.init_steps, "steps": args.steps, "overrides": args.overrides,
              "evaluations": {}}
    if args.init != "random" and args.init_steps > 0:
        params, loss = pretrain_generator(trainer, args.init, args.init_steps,
                                          args.init_learning_rate)
        report["init_final_l1"] = loss
        fresh = ModelState.create({"params": params}, trainer.method.g_tx)
        shardings = jax.tree.map(lambda a: a.sharding, trainer.state.models["generator"])
        models = {**trainer.state.models, "generator": jax.device_put(fresh, shardings)}
        trainer.state = trainer.state.replace(models=models)
    report["evaluations"]["start"] = evaluate(
        trainer, f"start ({args.init}, {args.init_steps if args.init != 'random' else 0} steps)")
    if args.steps:
        t0 = time.perf_counter()
        trainer.train(args.steps)
        report["train_seconds"] = time.perf_counter() - t0
        report["evaluations"]["end"] = evaluate(trainer, f"after {args.steps} StarGAN steps")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
