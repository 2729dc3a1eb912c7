"""Which translation StarGAN's objective keeps, by the generator it starts from (issue 18).

    python benchmarks/stargan_basins.py --init paired --steps 2000 --out basins_paired.json
    python benchmarks/stargan_basins.py --init identity --steps 3000
    python benchmarks/stargan_basins.py --init random --steps 2000 --set train.seed=1
    python benchmarks/stargan_basins.py --init random --seeds 0-21 --out basins_seeds.json
    python benchmarks/stargan_basins.py --init paired --two-sample
    python benchmarks/stargan_basins.py --init selected --restart-seeds 0-7 --steps 2000

A diagnostic, not a training recipe. ``stargan_digits`` (or ``--config``) is built as
``genjax train`` would build it; its generator is then started from one of:

* ``random``: the config's initialisation (what ``genjax train`` does);
* ``identity``: trained to copy its input, ``|G(x, c') - x|`` for random source and target
  domains (no paired information: "start from doing nothing");
* ``paired``: trained on the ground truth, ``|G(x, c') - view(x, c')|`` for random source and
  target domains of the same digit (the translation the evaluation scores as right).
* ``selected``: no paired data and no digit label (an unpaired start). StarGAN runs from the
  random starts of ``--restart-seeds`` (``--restart-steps`` steps each, the config otherwise);
  for each ordered pair of domains, the run whose translations the two-sample test below
  tells least often from real target-domain views, on training images only
  (:func:`select_per_pair`); the generator is then trained on those runs' translations,
  ``|G(x, c') - G_chosen(c, c')(x, c')|`` (a distillation into one generator). The runs fall
  into different basins by seed; the test picks, pair by pair, the run that matches the
  target domain best.

The pre-training is ``--init-steps`` Adam steps (learning rate ``--init-learning-rate``) on the
training batches of the run; a fresh discriminator and fresh optimizer states then go through
``--steps`` steps of StarGAN's own objective (``Trainer.train``). The evaluation (label
preservation per ordered pair, pixel and cycle L1, domain accuracy) runs after the pre-training
and at the end, with the classifiers of ``--classifier-workdir`` and
``--domain-classifier-workdir`` (trained here with their configs when missing: about two
minutes on 2 CPU cores).

If the objective preferred another map, training from the paired start would drift away from
it; if it holds the paired start, the failure of the random start is the basin the
optimisation falls into, not the objective. Each run is named by the basin it ends in
(:func:`basin`: ``right`` when the label preservation over the 6 pairs of original / inverted /
thick reaches issue 18's 0.80; ``inverter`` when the inversion pairs keep the digit and
original <-> thick lose it; ``thickener`` the other way round; ``neither``).

``--seeds 0-21`` repeats the run for each seed (``train.seed``; the pre-training's batches and
keys follow it) and counts the basins. ``--two-sample`` adds, for each ordered pair of the
local domains, a classifier two-sample test (Lopez-Paz & Oquab 2017) that needs no digit label
and no pairing: a small MLP (scikit-learn, 5-fold cross-validation) tells the translations of
the test images from the target-domain views of 300 training images; the mean held-out
accuracy is reported (0.5: indistinguishable; the ground-truth views of the test images score
the baseline). Prints one line per evaluation; ``--out`` writes every metric as JSON. Reports,
never asserts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax.data.domains import make_domain_views
from genjax.experiments import load_config
from genjax.train.loop import Trainer
from genjax.train.state import ModelState

INITS = ("random", "identity", "paired", "selected")
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


def pretrain_generator(trainer: Trainer, init: str, steps: int, learning_rate: float,
                       teachers: tuple | None = None):
    """The generator's parameters after ``steps`` Adam steps towards ``init``'s target, and the
    last batch's mean L1.

    ``init="selected"`` needs ``teachers = (params, choice)``: the generators' parameters
    stacked along a leading axis and ``choice[c, t]``, the generator whose translation from
    domain ``c`` to ``t`` is the target (the input itself where ``c == t``).
    """
    method = trainer.method
    params = trainer.state.models["generator"].params
    tx = optax.adam(learning_rate)
    opt = tx.init(params)
    k = method.num_domains
    if (init == "selected") != (teachers is not None):
        raise ValueError("init='selected' needs teachers=(stacked params, choice), and only it")

    def target(pixels, x, c, t):
        if init == "identity":
            return x
        if init == "paired":
            return method._views_of(pixels, t)
        stacked, choice = teachers
        every = jax.vmap(lambda p: method._generate(p, x, t))(stacked)  # (runs, B, H, W, C)
        picked = every[choice[c, t], jnp.arange(x.shape[0])]
        return jnp.where((c == t).reshape(-1, 1, 1, 1), x, jax.lax.stop_gradient(picked))

    @jax.jit
    def step(params, opt, pixels, key):
        k_source, k_target = jax.random.split(key)
        c = jax.random.randint(k_source, (pixels.shape[0],), 0, k)
        t = jax.random.randint(k_target, (pixels.shape[0],), 0, k)
        x = method._views_of(pixels, c)
        y = target(pixels, x, c, t)
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


def pair_mean(per_pair: dict, a: str, b: str) -> float:
    """Label preservation of ``a <-> b``: the mean of both directions."""
    return float(np.mean([per_pair[f"{a}->{b}"], per_pair[f"{b}->{a}"]]))


def basin(out: dict, threshold: float = 0.8, lost: float = 0.3) -> str:
    """Which translation a run keeps, from :func:`summary`'s output (module docstring)."""
    if out["label_mean_local_pairs"] >= threshold:
        return "right"
    if not {"original->inverted", "original->thick"} <= set(out["label_per_pair"]):
        return "neither"  # the families need original, inverted and thick
    inversion = pair_mean(out["label_per_pair"], "original", "inverted")
    thick = pair_mean(out["label_per_pair"], "original", "thick")
    if inversion >= threshold and thick < lost:
        return "inverter"
    if thick >= threshold and inversion < lost:
        return "thickener"
    return "neither"


def parse_seeds(text: str) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]``; ``argparse.ArgumentTypeError`` on anything else."""
    seeds = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            seeds.extend(range(int(low), int(high or low) + 1))
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(
            f"expected seeds such as 0-21 or 0,3,5 (distinct, >= 0), got {text!r}")
    return seeds


def two_sample_accuracy(a: np.ndarray, b: np.ndarray, seed: int = 0) -> float:
    """Mean held-out accuracy of an MLP telling sample ``a`` from sample ``b`` (5 folds)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neural_network import MLPClassifier

    x = np.concatenate([a.reshape(len(a), -1), b.reshape(len(b), -1)])
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    mlp = MLPClassifier((128,), max_iter=2000, random_state=seed)
    return float(cross_val_score(mlp, x, y, cv=folds).mean())


def unit_views(method, images: np.ndarray) -> np.ndarray:
    """Every view of ``method.domains`` of original pixels ``images``: ``(N, K, H, W, C)``
    in [0, 1], as :meth:`paired_views` gives the eval split's."""
    views = make_domain_views(images, None, method.domains, max_value=method.max_value)
    return views.images / method.max_value


def two_sample(trainer: Trainer, reference_size: int = 300) -> dict:
    """Per ordered pair of LOCAL: the two-sample accuracy of the translations of the eval
    images, and of their ground-truth views, against the target views of training images."""
    method = trainer.method
    views, _ = method.paired_views(method.eval_split())
    train = method.load_split(trainer.config.data.train_split, 0)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(train.images), min(reference_size, len(train.images)), replace=False)
    reference = unit_views(method, train.images[pick])
    out = {}
    for a in LOCAL:
        for b in LOCAL:
            if a == b or a not in method.domains or b not in method.domains:
                continue
            i, j = method.domains.index(a), method.domains.index(b)
            fake = np.clip(method.translate(trainer.state, views[:, i], j), 0.0, 1.0)
            out[f"{a}->{b}"] = {"translation": two_sample_accuracy(fake, reference[:, j]),
                                "ground_truth": two_sample_accuracy(views[:, j], reference[:, j])}
    return out


def thick_regions(trainer: Trainer) -> dict:
    """Where original -> thick puts its light: the mean of the translation, of the thick view
    and of the original over the stroke pixels (original > 0.5), the ring that the dilation adds
    (thick view > 0.5, original < 0.25) and the background (thick view < 0.25), eval images."""
    method = trainer.method
    views, _ = method.paired_views(method.eval_split())
    x = views[:, method.domains.index("original")]
    thick = views[:, method.domains.index("thick")]
    fake = np.clip(method.translate(trainer.state, x, method.domains.index("thick")), 0.0, 1.0)
    masks = {"stroke": x > 0.5, "ring": (thick > 0.5) & (x < 0.25), "background": thick < 0.25}
    return {name: {"fraction": float(m.mean()), "translation": float(fake[m].mean()),
                   "thick_view": float(thick[m].mean()), "original": float(x[m].mean())}
            for name, m in masks.items()}


def select_per_pair(method, states: list, images: np.ndarray, size: int = 300) -> tuple:
    """For each ordered pair of distinct domains, the run (index into ``states``) whose
    translations of ``size`` training images a two-sample test tells least often from the
    target views of ``size`` other training images (``images``: original training pixels).

    Needs no digit label and no pairing. Returns ``(choice (K, K) int array, accuracies
    {"a->b": [one per run]})``; ``choice[c, c]`` is 0 (unused).
    """
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images))
    if len(order) < 2 * size:
        raise ValueError(f"selection needs {2 * size} training images, got {len(order)}")
    views = unit_views(method, images[order[:2 * size]])
    source, reference = views[:size], views[size:]
    k = len(method.domains)
    choice, accuracies = np.zeros((k, k), np.int32), {}
    for a in range(k):
        for b in range(k):
            if a == b:
                continue
            scores = [two_sample_accuracy(np.clip(method.translate(state, source[:, a], b),
                                                  0.0, 1.0), reference[:, b])
                      for state in states]
            choice[a, b] = int(np.argmin(scores))
            accuracies[f"{method.domains[a]}->{method.domains[b]}"] = scores
    return choice, accuracies


def selected_teachers(args: argparse.Namespace, workdirs: dict[str, Path], report: dict):
    """``--init selected``: the StarGAN runs of ``--restart-seeds`` (``--restart-steps`` each,
    random starts, the config otherwise), and the run chosen for each pair by
    :func:`select_per_pair` on the training split: ``(stacked params, choice)``."""
    states, method, restarts = [], None, []
    for seed in args.restart_seeds:
        trainer = make_trainer(args, workdirs, seed, args.restart_steps)
        trainer.train(args.restart_steps)
        evaluation = evaluate(trainer, f"restart seed {seed}, after {args.restart_steps} "
                                       "StarGAN steps (test split, not used to select)")
        restarts.append({"seed": seed, "basin": evaluation["basin"],
                         "summary": evaluation["summary"]})
        states.append(trainer.state)
        method = trainer.method
    train = method.load_split(trainer.config.data.train_split, 0)
    choice, accuracies = select_per_pair(method, states, train.images)
    picks = {pair: args.restart_seeds[int(np.argmin(v))] for pair, v in accuracies.items()}
    print("selected (restart seed per pair, by the two-sample test on training images): "
          + ", ".join(f"{pair} {seed}" for pair, seed in picks.items()), flush=True)
    report["restarts"] = restarts
    report["selection"] = {"two_sample_accuracy": accuracies, "seed_per_pair": picks}
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves),
                           *[state.models["generator"].params for state in states])
    return stacked, jnp.asarray(choice)


def evaluate(trainer: Trainer, tag: str) -> dict:
    metrics = trainer.evaluate()
    out = summary(metrics, trainer.method.domains)
    pairs = " ".join(f"{k} {v:.2f}" for k, v in out["label_per_pair"].items())
    local = out["label_mean_local_pairs"]
    extra = ", ".join(f"{name} {metrics[key]:.3f}" for name, key in (
        ("domain accuracy", "domain_accuracy"), ("pixel L1", "pixel_l1"),
        ("doing nothing", "pixel_l1_identity_baseline"), ("cycle L1", "cycle_l1"))
        if isinstance(metrics.get(key), float))
    name = basin(out) if local is not None else "-"
    print(f"{tag}: label preservation {'-' if local is None else f'{local:.3f}'} over the "
          f"pairs of {'/'.join(LOCAL)}, {out['label_mean_all_pairs']:.3f} over all (basin: "
          f"{name}); {extra}; {pairs}", flush=True)
    return {"summary": out, "basin": name, "metrics": metrics}


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
    p.add_argument("--seeds", type=parse_seeds, default=None, metavar="0-21",
                   help="one run per seed (train.seed), the basins counted")
    p.add_argument("--two-sample", action="store_true",
                   help="classifier two-sample test per local pair at the end (no labels)")
    p.add_argument("--restart-seeds", type=parse_seeds, default=parse_seeds("0-7"),
                   metavar="0-7", help="--init selected: the seeds of its StarGAN runs")
    p.add_argument("--restart-steps", type=int, default=2000,
                   help="--init selected: StarGAN steps of each run")
    p.add_argument("--out", default=None, help="write every metric here as JSON")
    args = p.parse_args(argv)
    if args.init == "selected" and args.seeds is not None:
        p.error("--seeds repeats one start per seed; --init selected takes --restart-seeds")
    if args.init == "selected" and len(args.restart_seeds) < 2:
        p.error("--init selected chooses among runs: give --restart-seeds at least two seeds")
    for name in ("init_steps", "steps", "restart_steps"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    return args


def make_trainer(args: argparse.Namespace, workdirs: dict[str, Path], seed: int | None,
                 steps: int) -> Trainer:
    """The config (``--config``, ``--set``) for ``steps`` steps, ``train.seed=seed`` unless None."""
    steps = max(steps, 1)
    seeded = [] if seed is None else [f"train.seed={seed}"]
    config = load_config(args.config, [
        "train.progress=false", f"train.num_steps={steps}", f"train.log_every={steps}",
        "train.steps_per_dispatch=10", f"model.classifier_workdir={workdirs['classifier']}",
        f"model.domain_classifier_workdir={workdirs['domain_classifier']}", *args.overrides,
        *seeded])
    return Trainer(config, None)


def run(args: argparse.Namespace, workdirs: dict[str, Path], seed: int | None) -> dict:
    """One start and its StarGAN steps (``train.seed=seed`` unless None): the report."""
    report = {"evaluations": {}}
    teachers = (selected_teachers(args, workdirs, report) if args.init == "selected"
                else None)
    trainer = make_trainer(args, workdirs, seed, args.steps)
    report["seed"] = trainer.config.train.seed
    if args.init != "random" and args.init_steps > 0:
        params, loss = pretrain_generator(trainer, args.init, args.init_steps,
                                          args.init_learning_rate, teachers)
        report["init_final_l1"] = loss
        fresh = ModelState.create({"params": params}, trainer.method.g_tx)
        shardings = jax.tree.map(lambda a: a.sharding, trainer.state.models["generator"])
        models = {**trainer.state.models, "generator": jax.device_put(fresh, shardings)}
        trainer.state = trainer.state.replace(models=models)
    tag = "" if seed is None else f"seed {seed}, "
    report["evaluations"]["start"] = evaluate(
        trainer, f"{tag}start ({args.init}, "
                 f"{args.init_steps if args.init != 'random' else 0} steps)")
    if args.steps:
        t0 = time.perf_counter()
        trainer.train(args.steps)
        report["train_seconds"] = time.perf_counter() - t0
        report["evaluations"]["end"] = evaluate(trainer, f"{tag}after {args.steps} StarGAN steps")
    report["basin"] = report["evaluations"]["end" if args.steps else "start"]["basin"]
    if {"original", "thick"} <= set(trainer.method.domains):
        report["thick_regions"] = thick_regions(trainer)
        print(f"{tag}original -> thick, mean on stroke / ring / background pixels: translation "
              + " / ".join(f"{v['translation']:.2f}" for v in report["thick_regions"].values())
              + ", thick view " + " / ".join(f"{v['thick_view']:.2f}"
                                             for v in report["thick_regions"].values()),
              flush=True)
    if args.two_sample:
        report["two_sample"] = two_sample(trainer)
        print(f"{tag}two-sample accuracy (translation / ground truth; 0.5: indistinguishable): "
              + ", ".join(f"{k} {v['translation']:.2f} / {v['ground_truth']:.2f}"
                          for k, v in report["two_sample"].items()), flush=True)
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    workdirs = {"classifier": Path(args.classifier_workdir),
                "domain_classifier": Path(args.domain_classifier_workdir)}
    for field, workdir in workdirs.items():
        ensure_classifier(workdir, CLASSIFIER_CONFIGS[field])
    report = {"command": " ".join(sys.argv), "config": args.config, "init": args.init,
              "init_steps": args.init_steps, "steps": args.steps, "overrides": args.overrides}
    if args.seeds is None:
        report.update(run(args, workdirs, None))
    else:
        report["runs"] = [run(args, workdirs, seed) for seed in args.seeds]
        counts = Counter(r["basin"] for r in report["runs"])
        report["basin_counts"] = dict(counts)
        print(f"basins over seeds {','.join(map(str, args.seeds))} ({len(args.seeds)} runs): "
              + ", ".join(f"{k} {v}" for k, v in counts.most_common()), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
