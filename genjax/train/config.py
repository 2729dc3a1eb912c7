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
from typing import Any, ClassVar


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


def _bounds(low: float, high: float, open_low: bool, open_high: bool) -> str:
    if math.isinf(high):
        return f"{'>' if open_low else '>='} {low:g}"
    return f"in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"


def need_number(key: str, value: Any, low: float, high: float = math.inf, *,
                open_low: bool = False, open_high: bool = False, note: str = "") -> None:
    ok = _is_number(value) and (value > low if open_low else value >= low) and (
        value < high if open_high else value <= high)
    need(ok, key, value, f"a finite number {_bounds(low, high, open_low, open_high)}{note}")


def need_choice(key: str, value: Any, choices: tuple) -> None:
    need(value in choices, key, value, f"one of {choices}")


def need_preprocess(data: Any, accepted: tuple[str, ...], why: str, *,
                    eval_same: bool = False) -> None:
    """The input convention a method takes: ``data.preprocess`` one of ``accepted``, and
    ``data.eval_preprocess`` empty (= ``data.preprocess``) or, unless ``eval_same``, also one of
    ``accepted`` (``eval_same``: only ``data.preprocess`` itself). ``why`` ends the message,
    e.g. ``"with model.likelihood='bernoulli'"``."""
    what = repr(accepted[0]) if len(accepted) == 1 else f"one of {accepted}"
    need(data.preprocess in accepted, "data.preprocess", data.preprocess, f"{what} {why}")
    allowed = ("", data.preprocess) if eval_same else ("", *accepted)
    need(data.eval_preprocess in allowed, "data.eval_preprocess", data.eval_preprocess,
         f"empty or {data.preprocess!r} (data.preprocess)" if eval_same
         else f"empty or {what} {why}")


# -- field rules ------------------------------------------------------------------------------
# Every config dataclass lists a rule for each of its fields in ``LIMITS`` (a ClassVar): the
# field's type and range. :func:`check_fields` applies them; relations between fields (and to
# the data) are checked by :func:`check_sections` and by each method's ``check_config``.
# A rule that accepts 0 carries a ``note`` saying what 0 means; the field's docstring says the
# same (tests/test_config_limits.py walks every field of every registered config).


@dataclasses.dataclass(frozen=True)
class Rule:
    """Base of the field rules: ``rule(key, value)`` raises :class:`ConfigValueError`."""

    note: str = ""  # what the smallest accepted value means (e.g. "0: no limit")

    def _suffix(self) -> str:
        return f" ({self.note})" if self.note else ""

    def __call__(self, key: str, value: Any) -> None:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class AtLeast(Rule):
    """An integer >= ``minimum``."""

    minimum: int = 1

    def __call__(self, key, value):
        need(_is_int(value) and value >= self.minimum, key, value,
             f"an integer >= {self.minimum}{self._suffix()}")


@dataclasses.dataclass(frozen=True)
class Number(Rule):
    """A finite number (int or float) in the interval ``low .. high``."""

    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False

    def __call__(self, key, value):
        need_number(key, value, self.low, self.high, open_low=self.open_low,
                    open_high=self.open_high, note=self._suffix())


@dataclasses.dataclass(frozen=True)
class OneOf(Rule):
    """One of ``choices`` (a tuple, or a function returning one, read when checking)."""

    choices: Any = ()

    def __call__(self, key, value):
        choices = self.choices() if callable(self.choices) else self.choices
        need_choice(key, value, tuple(choices))


@dataclasses.dataclass(frozen=True)
class Text(Rule):
    """A string (a name, a path, a split); ``nonempty`` refuses ``""``."""

    nonempty: bool = False

    def __call__(self, key, value):
        need(isinstance(value, str) and (bool(value) or not self.nonempty), key, value,
             "a non-empty string" if self.nonempty else f"a string{self._suffix()}")


@dataclasses.dataclass(frozen=True)
class Flag(Rule):
    """``True`` or ``False``."""

    def __call__(self, key, value):
        need(isinstance(value, bool), key, value, "true or false")


@dataclasses.dataclass(frozen=True)
class Each(Rule):
    """A tuple whose every element satisfies ``element``, of length ``min_len .. max_len``."""

    element: Rule = Rule()
    min_len: int = 0
    max_len: int | None = None

    def __call__(self, key, value):
        if self.max_len == self.min_len:
            length = f"exactly {self.min_len}"
        elif self.max_len is None:
            length = f"at least {self.min_len}"
        else:
            length = f"{self.min_len} to {self.max_len}"
        ok = isinstance(value, tuple | list) and len(value) >= self.min_len and (
            self.max_len is None or len(value) <= self.max_len)
        need(ok, key, value, f"a tuple of {length} values{self._suffix()}")
        for i, v in enumerate(value):
            self.element(f"{key}[{i}]", v)


def check_fields(section: Any, prefix: str) -> None:
    """Applies the ``LIMITS`` rule of every field of the dataclass ``section``.

    A field without a rule is not checked here; tests/test_config_limits.py requires a rule
    for every field of every registered config class.

    Raises:
      ConfigValueError: one line naming ``<prefix><field>``, the value and what is accepted.
    """
    limits = getattr(type(section), "LIMITS", {})
    for field in dataclasses.fields(section):
        if field.name in limits:
            limits[field.name](f"{prefix}{field.name}", getattr(section, field.name))


def _preprocess_modes() -> tuple:
    from genjax.data.preprocess import PREPROCESS_MODES

    return tuple(PREPROCESS_MODES)


def _compute_dtypes() -> tuple:
    from genjax.train.precision import COMPUTE_DTYPES

    return tuple(COMPUTE_DTYPES)


# The names genjax.train.optim builds optax transformations and learning-rate schedules for.
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "exponential", "iwae", "linear")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which data, and how a batch becomes model input.

    Attributes:
      name: dataset name for :func:`genjax.data.load_dataset` (``digits``, ``mnist``, ...).
      train_split / eval_split: TFDS split strings (slicing such as ``train[:90%]`` allowed).
      preprocess: a :func:`genjax.data.preprocess` mode (``unit``, ``symmetric``,
        ``binarize_dynamic``, ``binary``, ``dequantize``, ``integer``, ``none``).
      eval_preprocess: mode for evaluation data; empty means the same as ``preprocess``.
        Dynamic binarization in training is usually paired with a fixed (seeded) binarization
        of the test set: use ``binarize_dynamic`` for both and the eval key is fixed per run.
      data_dir: where prepared TFDS data lives (default: ``$GENJAX_DATA_DIR``,
        ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
      manual_dir: a folder holding the original archive files, for offline preparation.
      max_train_examples / max_eval_examples: 0 means all; smoke tests use small numbers.
    """

    LIMITS: ClassVar[dict[str, Rule]] = {
        "name": Text(nonempty=True),
        "train_split": Text(nonempty=True),
        "eval_split": Text(nonempty=True),
        "preprocess": OneOf(choices=_preprocess_modes),
        "eval_preprocess": OneOf(choices=lambda: ("", *_preprocess_modes())),
        "data_dir": Text(note="empty: the default folder"),
        "manual_dir": Text(note="empty: none"),
        "max_train_examples": AtLeast(minimum=0, note="0: all"),
        "max_eval_examples": AtLeast(minimum=0, note="0: all"),
    }

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
    """Optimizer (optax) settings shared by all gradient-trained methods.

    Attributes:
      name: ``adam``, ``adamw``, ``sgd`` or ``rmsprop``.
      learning_rate: the peak learning rate, > 0.
      b1 / b2: Adam's moment decays, in [0, 1); 0 means no averaging of that moment.
      eps: Adam's (and RMSProp's) denominator offset, > 0.
      weight_decay: AdamW's decoupled weight decay; 0 means none.
      momentum: SGD's and RMSProp's momentum, in [0, 1); 0 means none.
      schedule: ``constant``, ``cosine``, ``exponential``, ``iwae`` or ``linear``.
      decay_rate: exponential: ``lr * decay_rate ** (step / decay_steps)``, > 0.
      decay_steps: exponential: its time scale; iwae: steps per epoch; linear: decay length
        (>= 1 for those three); 0 means unused (constant and cosine schedules).
      warmup_steps: linear warm-up from 0 to the learning rate; 0 means none.
      grad_clip_norm: clip gradients to this global norm; 0 means no clipping.
    """

    LIMITS: ClassVar[dict[str, Rule]] = {
        "name": OneOf(choices=OPTIMIZERS),
        "learning_rate": Number(low=0.0, open_low=True),
        "b1": Number(low=0.0, high=1.0, open_high=True, note="0: no averaging"),
        "b2": Number(low=0.0, high=1.0, open_high=True, note="0: no averaging"),
        "eps": Number(low=0.0, open_low=True),
        "weight_decay": Number(low=0.0, note="0: none"),
        "momentum": Number(low=0.0, high=1.0, open_high=True, note="0: none"),
        "schedule": OneOf(choices=SCHEDULES),
        "decay_rate": Number(low=0.0, open_low=True),
        "decay_steps": AtLeast(minimum=0, note="0: unused, for constant and cosine schedules"),
        "warmup_steps": AtLeast(minimum=0, note="0: no warm-up"),
        "grad_clip_norm": Number(low=0.0, note="0: no clipping"),
    }

    name: str = "adam"
    learning_rate: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    schedule: str = "constant"
    decay_rate: float = 1.0
    decay_steps: int = 0
    warmup_steps: int = 0
    grad_clip_norm: float = 0.0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The loop: how long, how big, how often to log, evaluate and checkpoint; how fast.

    Attributes:
      seed: the run's one base seed (data order, initialisation, every step's noise); any
        integer >= 0, 0 included.
      batch_size: global batch, split over the devices.
      num_devices: devices of each process to use; 0 means all of them when the batch divides
        their count, otherwise the largest count that divides it (said in the log).
      num_steps: steps to train (a resumed run continues up to it); 0 trains nothing and
        evaluates the initial parameters.
      log_every: metrics are fetched from the devices every this many steps; the logged values
        are the means over that window and the last step's values (``<key>_last``).
      eval_every / checkpoint_every: evaluation (with pictures) and checkpoint intervals.
      max_to_keep: checkpoints kept.
      progress: a progress bar (a line every 10 s when standard error is not a terminal).
      steps_per_dispatch: k steps inside one jitted call (a loop over k batches on the
        devices); 1 dispatches every step. Larger k hides the per-call host cost of small
        models and, on the CPU, the cost of each call's fresh temporaries (XLA:CPU allocates
        them per call and the kernel zero-fills every new page: PixelCNN on binarized MNIST,
        1.7 GB, 0.72 -> 1.05 steps/s at k=8 on 2 cores); the numbers are bitwise those of
        single steps.
      compute_dtype: ``float32`` or ``bfloat16``: the dtype of activations, matmuls and
        convolutions. Parameters, optimizer state and the EMA stay float32; likelihoods,
        log-determinants, loss reductions and metrics are computed in float32.
      ema_decay: 0 (off) or the decay in (0, 1) of a Polyak (exponential moving) average of the
        parameters, updated inside every step, saved with checkpoints and used by evaluation,
        sampling and pictures.
      max_seconds: 0 (no limit) or a wall-clock budget for set-up, compilation and training:
        the run stops after the step that crosses it, saves a checkpoint and runs the final
        evaluation (not counted in the budget).
      gpu_exclude_nondeterministic_ops: on GPUs, compile the training programs with XLA's
        ``xla_gpu_exclude_nondeterministic_ops`` (its autotuner then picks deterministic
        algorithms only). On by default: on an NVIDIA H200 the algorithms picked otherwise gave
        PixelCNN wrong gradients (gradient norm 758.7 against 659.8 on the CPU). false: XLA's
        own choice (PixelCNN's float32 step was 1.34x faster there, with those gradients).
        No effect on CPUs and TPUs.
    """

    LIMITS: ClassVar[dict[str, Rule]] = {
        "seed": AtLeast(minimum=0, note="0 is a seed like any other"),
        "batch_size": AtLeast(),
        "num_devices": AtLeast(minimum=0, note="0: as many as divide the batch"),
        "num_steps": AtLeast(minimum=0, note="0: evaluate the initial parameters"),
        "log_every": AtLeast(),
        "eval_every": AtLeast(),
        "checkpoint_every": AtLeast(),
        "max_to_keep": AtLeast(),
        "progress": Flag(),
        "steps_per_dispatch": AtLeast(),
        "compute_dtype": OneOf(choices=_compute_dtypes),
        "ema_decay": Number(low=0.0, high=1.0, open_high=True,
                            note="0 turns the parameter average off"),
        "max_seconds": Number(low=0.0, note="seconds; 0: no time limit"),
        "gpu_exclude_nondeterministic_ops": Flag(),
    }

    seed: int = 0
    batch_size: int = 100
    num_devices: int = 0
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
    gpu_exclude_nondeterministic_ops: bool = True


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Evaluation protocol (sample counts are part of every reported number).

    Attributes:
      batch_size: examples per evaluation batch.
      num_samples: images in the sample grid.
      iwae_samples: K of the importance-weighted log p(x) estimate (VAEs).
      iwae_batch_size: test examples per K-sample chunk.
      max_examples: evaluate on the first this many examples of the eval split; 0 means all.
    """

    LIMITS: ClassVar[dict[str, Rule]] = {
        "batch_size": AtLeast(),
        "num_samples": AtLeast(),
        "iwae_samples": AtLeast(),
        "iwae_batch_size": AtLeast(),
        "max_examples": AtLeast(minimum=0, note="0: the whole eval split"),
    }

    batch_size: int = 500
    num_samples: int = 64
    iwae_samples: int = 5000
    iwae_batch_size: int = 20
    max_examples: int = 0


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


def check_sections(config: Config) -> None:
    """Checks every field of every section (rules in each section's ``LIMITS``, the model
    section's included) and the relations within the data, optim and train sections.

    The model section's relations to other fields and to the data are its method's
    (:func:`genjax.train.method.check_config` checks both).
    """
    need(isinstance(config.method, str) and bool(config.method), "method", config.method,
         "a method name")
    for name in ("data", "optim", "train", "eval"):
        check_fields(getattr(config, name), f"{name}.")
    if dataclasses.is_dataclass(config.model):  # the method checks the model section's type
        check_fields(config.model, "model.")
    o = config.optim
    if o.schedule in ("exponential", "iwae", "linear"):
        need(o.decay_steps >= 1, "optim.decay_steps", o.decay_steps,
             f"an integer >= 1 with optim.schedule={o.schedule!r}")


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
    # Fields a section no longer has but saved runs still hold (``RETIRED_FIELDS``: name ->
    # why): dropped, so a run saved before the change still restores.
    retired = set(getattr(cls, "RETIRED_FIELDS", {}))
    unknown = set(values) - names - retired - {"model_class"}
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
