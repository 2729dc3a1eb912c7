"""Typed experiment configs and ``--set key=value`` overrides.

A config is a tree of frozen dataclasses. Every experiment file in ``experiments/`` defines
``get_config() -> Config``; the method-specific part lives in ``Config.model`` (a dataclass
owned by the method, e.g. :class:`genjax.methods.vae.VAEConfig`).

Overrides are dotted paths into that tree (``train.num_steps=200``, ``model.latent_dim=2``).
An unknown key fails with the list of keys that exist; a value that cannot be parsed as the
field's type fails naming the field and the type.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which data, and how a batch becomes model input.

    Attributes:
      name: dataset name for :func:`genjax.data.load_dataset` (``digits``, ``mnist``, ...).
      train_split / eval_split: TFDS split strings (slicing such as ``train[:90%]`` allowed).
      preprocess: a :func:`genjax.data.preprocess` mode (``unit``, ``symmetric``,
        ``binarize_dynamic``, ``binary``, ``dequantize``, ``integer``).
      eval_preprocess: mode for evaluation data; empty means the same as ``preprocess``.
        Dynamic binarization in training is usually paired with a fixed (seeded) binarization
        of the test set: use ``binarize_dynamic`` for both and the eval key is fixed per run.
      data_dir: where prepared TFDS data lives (default: ``$GENJAX_DATA_DIR``,
        ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
      manual_dir: a folder holding the original archive files, for offline preparation.
      max_train_examples / max_eval_examples: 0 means all; smoke tests use small numbers.
    """

    name: str = "digits"
    train_split: str = "train"
    eval_split: str = "test"
    preprocess: str = "unit"
    eval_preprocess: str = ""
    data_dir: str = ""
    manual_dir: str = ""
    max_train_examples: int = 0
    max_eval_examples: int = 0


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Optimizer (optax) settings shared by all gradient-trained methods."""

    name: str = "adam"  # adam | adamw | sgd | rmsprop
    learning_rate: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    schedule: str = "constant"  # constant | cosine | exponential | iwae | linear
    decay_rate: float = 1.0  # exponential: lr * decay_rate ** (step / decay_steps)
    decay_steps: int = 0  # exponential: its time scale; iwae: steps per epoch; linear: decay length
    warmup_steps: int = 0
    grad_clip_norm: float = 0.0  # 0 disables


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The loop: how long, how big, how often to log, evaluate and checkpoint; how fast.

    Attributes:
      seed: the run's one base seed (data order, initialisation, every step's noise).
      batch_size: global batch, split over all devices.
      num_steps: steps to train (a resumed run continues up to it).
      log_every: metrics are fetched from the devices every this many steps; the logged values
        are the means over that window and the last step's values (``<key>_last``).
      eval_every / checkpoint_every: evaluation (with pictures) and checkpoint intervals.
      max_to_keep: checkpoints kept.
      progress: a progress bar (a line every 10 s when standard error is not a terminal).
      steps_per_dispatch: k steps inside one jitted call (a loop over k batches on the
        devices); 1 dispatches every step. Larger k hides the per-call host cost of small
        models; the numbers are bitwise those of single steps.
      compute_dtype: ``float32`` or ``bfloat16``: the dtype of activations, matmuls and
        convolutions. Parameters, optimizer state and the EMA stay float32; likelihoods,
        log-determinants, loss reductions and metrics are computed in float32.
      ema_decay: 0 (off) or the decay in (0, 1) of a Polyak (exponential moving) average of the
        parameters, updated inside every step, saved with checkpoints and used by evaluation,
        sampling and pictures.
      max_seconds: 0 (no limit) or a wall-clock budget for set-up, compilation and training:
        the run stops after the step that crosses it, saves a checkpoint and runs the final
        evaluation (not counted in the budget).
    """

    seed: int = 0
    batch_size: int = 100  # global batch, split over all devices
    num_steps: int = 1000
    log_every: int = 50
    eval_every: int = 500
    checkpoint_every: int = 500
    max_to_keep: int = 3
    progress: bool = True
    steps_per_dispatch: int = 1
    compute_dtype: str = "float32"
    ema_decay: float = 0.0
    max_seconds: float = 0.0


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


class ConfigValueError(ValueError):
    """A config field holds a value out of its type, range or relation to other fields."""


def need(ok: bool, key: str, value: Any, accepted: str) -> None:
    """Raises :class:`ConfigValueError` ``"<key>=<value>; expected <accepted>"`` unless ``ok``."""
    if not ok:
        raise ConfigValueError(f"{key}={value!r}; expected {accepted}")


def need_int(key: str, value: Any, minimum: int) -> None:
    need(_is_int(value) and value >= minimum, key, value, f"an integer >= {minimum}")


def need_number(key: str, value: Any, low: float, high: float = math.inf, *,
                open_low: bool = False, open_high: bool = False, note: str = "") -> None:
    ok = _is_number(value) and (value > low if open_low else value >= low) and (
        value < high if open_high else value <= high)
    if math.isinf(high):
        bounds = f"{'>' if open_low else '>='} {low:g}"
    else:
        bounds = f"in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
    need(ok, key, value, f"a finite number {bounds}{note}")


def need_choice(key: str, value: Any, choices: tuple) -> None:
    need(value in choices, key, value, f"one of {choices}")


def check_train_config(cfg: TrainConfig) -> None:
    """Raises ConfigValueError (one line naming the key, the value and what is accepted) for a
    bad ``train`` section; called before any data is read or anything compiled."""
    from genjax.train.precision import COMPUTE_DTYPES

    need_int("train.seed", cfg.seed, 0)
    for key in ("batch_size", "log_every", "eval_every", "checkpoint_every", "max_to_keep",
                "steps_per_dispatch"):
        need_int(f"train.{key}", getattr(cfg, key), 1)
    need_int("train.num_steps", cfg.num_steps, 0)
    need_choice("train.compute_dtype", cfg.compute_dtype, COMPUTE_DTYPES)
    need_number("train.ema_decay", cfg.ema_decay, 0.0, 1.0, open_high=True,
                note=" (0 turns the parameter average off)")
    need_number("train.max_seconds", cfg.max_seconds, 0.0, note=" (seconds; 0: no time limit)")


def check_sections(config: Config) -> None:
    """Checks the data, optim, train and eval sections (the model section is its method's)."""
    from genjax.data.preprocess import PREPROCESS_MODES
    from genjax.train.optim import OPTIMIZERS, SCHEDULES

    d, o, e = config.data, config.optim, config.eval
    need(isinstance(d.name, str) and bool(d.name), "data.name", d.name, "a dataset name")
    need_choice("data.preprocess", d.preprocess, PREPROCESS_MODES)
    need_choice("data.eval_preprocess", d.eval_preprocess, ("", *PREPROCESS_MODES))
    need_int("data.max_train_examples", d.max_train_examples, 0)
    need_int("data.max_eval_examples", d.max_eval_examples, 0)
    need_choice("optim.name", o.name, OPTIMIZERS)
    need_number("optim.learning_rate", o.learning_rate, 0.0, open_low=True)
    need_number("optim.b1", o.b1, 0.0, 1.0, open_high=True)
    need_number("optim.b2", o.b2, 0.0, 1.0, open_high=True)
    need_number("optim.eps", o.eps, 0.0, open_low=True)
    need_number("optim.weight_decay", o.weight_decay, 0.0)
    need_number("optim.momentum", o.momentum, 0.0, 1.0, open_high=True)
    need_choice("optim.schedule", o.schedule, SCHEDULES)
    need_number("optim.decay_rate", o.decay_rate, 0.0, open_low=True)
    need_int("optim.decay_steps", o.decay_steps, 0)
    if o.schedule in ("exponential", "iwae", "linear"):
        need(o.decay_steps >= 1, "optim.decay_steps", o.decay_steps,
             f"an integer >= 1 with optim.schedule={o.schedule!r}")
    need_int("optim.warmup_steps", o.warmup_steps, 0)
    need_number("optim.grad_clip_norm", o.grad_clip_norm, 0.0, note=" (0: no clipping)")
    check_train_config(config.train)
    for key in ("batch_size", "num_samples", "iwae_samples", "iwae_batch_size"):
        need_int(f"eval.{key}", getattr(e, key), 1)
    need_int("eval.max_examples", e.max_examples, 0)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Evaluation protocol (sample counts are part of every reported number)."""

    batch_size: int = 500
    num_samples: int = 64  # images in the sample grid
    iwae_samples: int = 5000  # K for the importance-weighted log p(x) estimate
    iwae_batch_size: int = 20  # test examples per K-sample chunk
    max_examples: int = 0  # 0 means the whole eval split


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole experiment: method name plus its typed sections."""

    method: str
    model: Any
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    description: str = ""


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Returns ``{"a.b": value}`` for every leaf field of a dataclass tree."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        key = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value):
            out.update(flatten(value, key + "."))
        else:
            out[key] = value
    return out


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-serialisable nested dict (with the model section's class name recorded)."""
    out = dataclasses.asdict(config)
    if isinstance(config, Config):
        out["model_class"] = type(config.model).__name__
    return out


def to_json(config: Any) -> str:
    return json.dumps(to_dict(config), indent=2, sort_keys=True)


def _field_type(owner: Any, name: str) -> Any:
    hints = typing.get_type_hints(type(owner))
    return hints[name]


def _parse(value: str, typ: Any, key: str) -> Any:
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value.lower() in ("none", "null"):
            return None
        typ = args[0]
        origin = typing.get_origin(typ)
    try:
        if typ is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if typ is int:
            return int(value)
        if typ is float:
            return float(value)
        if typ is str:
            return value
        if origin is tuple:
            inner = typing.get_args(typ)[0]
            parts = [p for p in value.strip("()[] ").split(",") if p.strip()]
            return tuple(_parse(p.strip(), inner, key) for p in parts)
    except ValueError:
        raise ValueError(
            f"--set {key}={value!r}: expected a value of type {getattr(typ, '__name__', typ)}"
        ) from None
    raise ValueError(f"--set {key}: fields of type {typ} cannot be set from the command line")


def apply_overrides(config: Any, overrides: list[str] | tuple[str, ...]) -> Any:
    """Returns a copy of ``config`` with each ``"dotted.key=value"`` applied.

    Raises:
      ValueError: for a malformed override, an unknown key (the message lists the keys that
        exist) or a value that does not parse as the field's type.
    """
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        config = _set(config, key.strip().split("."), value.strip(), key.strip(), config)
    return config


def _set(node: Any, path: list[str], value: str, key: str, root: Any) -> Any:
    names = {f.name for f in dataclasses.fields(node)}
    if path[0] not in names:
        valid = ", ".join(sorted(flatten(root)))
        raise ValueError(f"unknown config key {key!r}. Keys that exist: {valid}")
    current = getattr(node, path[0])
    if len(path) == 1:
        if dataclasses.is_dataclass(current):
            raise ValueError(f"{key!r} is a section, not a value; set one of its fields")
        new = _parse(value, _field_type(node, path[0]), key)
    else:
        if not dataclasses.is_dataclass(current):
            valid = ", ".join(sorted(flatten(root)))
            raise ValueError(f"unknown config key {key!r}. Keys that exist: {valid}")
        new = _set(current, path[1:], value, key, root)
    return dataclasses.replace(node, **{path[0]: new})


def _from_value(value: Any, typ: Any) -> Any:
    origin = typing.get_origin(typ)
    if dataclasses.is_dataclass(typ) and isinstance(value, dict):
        return from_dict(typ, value)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Rebuilds a dataclass tree written by :func:`to_dict` (unknown keys are an error)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names - {"model_class"}
    if unknown:
        raise ValueError(f"{cls.__name__} has no fields {sorted(unknown)}; fields: {sorted(names)}")
    return cls(**{k: _from_value(v, hints[k]) for k, v in values.items() if k in names})


def config_from_dict(values: dict[str, Any], model_cls: type) -> Config:
    """Rebuilds a :class:`Config` whose model section is of type ``model_cls``."""
    values = dict(values)
    values.pop("model_class", None)
    model = from_dict(model_cls, values.pop("model"))
    hints = typing.get_type_hints(Config)
    kwargs = {k: _from_value(v, hints[k]) for k, v in values.items()}
    return Config(model=model, **kwargs)
