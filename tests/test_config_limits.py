"""Every field of every config is checked when the config is loaded, before any data is read.

The walk below covers every registered experiment config and every numeric field in it (ints,
floats and tuples of them): zero, a negative value, and for floats NaN and infinity. Each is
either refused with one line naming the key, or accepted because the field's rule says what 0
means (and the field's docstring says the same). A field added later without a rule, or without
a docstring entry, fails ``test_every_config_field_has_a_rule_and_a_docstring_entry``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import sys

import pytest

from genjax.experiments import available_configs, load_config
from genjax.train.config import (
    AtLeast,
    Config,
    ConfigValueError,
    DataConfig,
    Each,
    EvalConfig,
    Number,
    OptimConfig,
    TrainConfig,
    apply_overrides,
)
from genjax.train.method import available_methods, check_config, get_method

SECTIONS = {"data": DataConfig, "optim": OptimConfig, "train": TrainConfig, "eval": EvalConfig}


def _config_classes() -> list[type]:
    methods = [get_method(name) for name in available_methods()]  # genjax's, not tests' own
    models = {m.model_config for m in methods if m.__module__.startswith("genjax.")}
    return [*SECTIONS.values(), *sorted(models, key=lambda c: c.__name__)]


def _docstring_entries(cls: type) -> dict[str, str]:
    """``{field: its text}`` from the ``Attributes:`` block of ``cls``'s docstring."""
    doc = cls.__doc__ or ""
    block = doc.split("Attributes", 1)[1] if "Attributes" in doc else ""
    entries: dict[str, str] = {}
    names: list[str] = []
    for line in block.splitlines()[1:]:
        m = re.match(r"^ {6}([\w ,/]+):(.*)$", line)
        if m:
            names = [n.strip() for n in re.split(r"[,/]", m.group(1)) if n.strip()]
            for n in names:
                entries[n] = m.group(2)
        elif line.startswith(" " * 8):
            for n in names:
                entries[n] += " " + line.strip()
    return entries


def _accepts_zero(rule) -> bool:
    if isinstance(rule, Each):
        return _accepts_zero(rule.element)
    if isinstance(rule, AtLeast):
        return rule.minimum <= 0
    if isinstance(rule, Number):
        return rule.low < 0 or (rule.low == 0 and not rule.open_low)
    return False


@pytest.mark.parametrize("cls", _config_classes(), ids=lambda c: c.__name__)
def test_every_config_field_has_a_rule_and_a_docstring_entry(cls):
    entries = _docstring_entries(cls)
    for field in dataclasses.fields(cls):
        assert field.name in cls.LIMITS, f"{cls.__name__}.LIMITS has no rule for {field.name}"
        assert field.name in entries, f"{cls.__name__}'s docstring does not describe {field.name}"
        rule = cls.LIMITS[field.name]
        if _accepts_zero(rule):
            # Zero means "off" (or "all", "none") only where the docstring says so.
            assert rule.note, f"{cls.__name__}.{field.name} accepts 0 without saying what it means"
            assert re.search(r"(?<![\w.])0(?![\w.])", entries[field.name]), (
                f"{cls.__name__}.{field.name}: the docstring does not say what 0 means")
    assert set(cls.LIMITS) == {f.name for f in dataclasses.fields(cls)}


def _numeric_fields(config: Config):
    """``(key, value, element_is_float)`` for every int, float or numeric-tuple leaf."""
    for section in ("data", "optim", "train", "eval", "model"):
        node = getattr(config, section)
        for field in dataclasses.fields(node):
            value = getattr(node, field.name)
            key = f"{section}.{field.name}"
            if isinstance(value, bool) or isinstance(value, str):
                continue
            if isinstance(value, int | float):
                yield key, value, type(node).LIMITS[field.name], isinstance(value, float)
            elif isinstance(value, tuple) and all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in value):
                rule = type(node).LIMITS[field.name]
                if value or isinstance(rule.element, AtLeast | Number):
                    is_float = isinstance(rule.element, Number)
                    yield key, value, rule, is_float


def _bad_values(is_float: bool) -> list[str]:
    return ["0", "-1", "-0.5", "nan", "inf"] if is_float else ["0", "-1"]


def _override(key: str, current, bad: str) -> str:
    if isinstance(current, tuple):  # the first element replaced, the length kept
        rest = [repr(v) for v in current[1:]]
        return f"{key}={','.join([bad, *rest])}"
    return f"{key}={bad}"


@pytest.mark.parametrize("name", sorted(available_configs()))
def test_out_of_range_values_are_refused_naming_the_key(name):
    base = load_config(name)
    checked = 0
    for key, current, rule, is_float in _numeric_fields(base):
        for bad in _bad_values(is_float):
            config = apply_overrides(base, [_override(key, current, bad)])
            try:
                check_config(config)
            except ConfigValueError as e:
                message = str(e)
                assert key in message and "\n" not in message, (key, bad, message)
                assert "expected" in message, (key, bad, message)
                checked += 1
                continue
            # Accepted: only zero, only where the rule documents what zero means.
            assert float(bad) == 0.0, f"{name}: {key}={bad} was accepted"
            assert rule.note, f"{name}: {key}=0 accepted without a documented meaning"
    assert checked >= 10  # every config has at least this many numeric fields refusing bad input


@pytest.mark.parametrize("config_name, override, key", [
    ("vae_digits", "eval.iwae_samples=0", "eval.iwae_samples"),
    ("vae_digits", "eval.iwae_samples=700", "eval.iwae_samples"),
    ("vae_digits", "train.num_steps=-5", "train.num_steps"),
    ("vae_digits", "data.preprocess=symmetric", "data.preprocess"),
    ("vae_digits", "model.architecture=conv", None),  # (32, 64) stages halve 8x8 twice: fine
    ("vae_digits", "model.conv_features=8,8,8,8", None),  # mlp: the conv stages are unused
    ("vae_digits", "data.name=no_such_dataset", "data.name"),
    ("vae_digits", "optim.b1=1.5", "optim.b1"),
    ("vae_digits", "optim.schedule=exponential", "optim.decay_steps"),
    ("ppca_digits", "model.latent_dim=64", "model.latent_dim"),
    ("ppca_digits", "model.latent_dim=100", "model.latent_dim"),
    ("linear_ae_digits", "model.latent_dim=64", "model.latent_dim"),
    ("gmm_toy2d", "model.num_components=3000", "model.num_components"),
    ("dcgan_digits", "model.num_stages=4", "model.num_stages"),
    ("dcgan_digits", "model.discriminator_hidden=(16,)", "model.discriminator_hidden"),
    ("wgangp_mnist", "model.discriminator_norm=batch", "model.discriminator_norm"),
    ("wgangp_mnist", "model.n_critic=3", "train.batch_size"),
    ("gan_toy2d", "model.architecture=dcgan", "model.architecture"),
    ("gan_toy2d", "model.conditional=true", None),  # the toy points have labels
    ("pixelcnn_digits", "model.kernel_size=4", "model.kernel_size"),
    ("pixelcnn_digits", "model.sampler=multiscale", "model.sampler"),
    ("pixelcnn_digits", "data.preprocess=unit", "data.preprocess"),
    ("realnvp_digits", "model.num_scales=5", "model.num_scales"),
    ("realnvp_toy2d", "model.architecture=image", "data.preprocess"),
    ("realnvp_digits", "model.architecture=toy2d,data.preprocess=none", "model.architecture"),
    ("cyclegan_digits", "model.domains=original", "model.domains"),
    ("cyclegan_digits", "model.domains=original,upside_down", "model.domains[1]"),
    ("cyclegan_digits", "model.num_downsamples=3", "model.num_downsamples"),
    ("cyclegan_digits", "model.discriminator_layers=2", "model.discriminator_layers"),
    ("stargan_digits", "model.discriminator_layers=4", "model.discriminator_layers"),
    ("stargan_digits", "data.name=digits_domains", "data.name"),
    ("classifier_digits", "data.preprocess=binarize_dynamic", "data.preprocess"),
])
def test_relations_between_fields_and_to_the_data(config_name, override, key):
    """Relations to other fields and to the data's shape, checked at load time (no data read)."""
    overrides = re.split(r",(?=[a-z]+\.)", override)  # "a.b=1,c.d=2": two overrides
    if key is None:
        load_config(config_name, overrides)
        return
    with pytest.raises(ConfigValueError) as info:
        load_config(config_name, overrides)
    assert key in str(info.value) and "\n" not in str(info.value)


def test_the_data_relations_are_checked_without_reading_data(monkeypatch):
    import genjax.data.dataset as dataset

    def refuse(*args, **kwargs):
        raise AssertionError("the config check read data")

    monkeypatch.setattr(dataset, "load_dataset", refuse)
    with pytest.raises(ConfigValueError, match="model.num_scales"):
        load_config("realnvp_mnist", ["model.num_scales=4"])  # 28x28: three squeezes do not fit


def test_a_bad_value_on_the_command_line_is_one_line_without_a_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "genjax.cli", "train", "vae_digits", "--workdir",
         str(tmp_path / "w"), "--set", "eval.iwae_samples=0"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "eval.iwae_samples=0" in lines[0], proc.stderr
    assert not (tmp_path / "w").exists()  # refused before the workdir was touched


def test_values_written_in_python_get_the_same_check():
    """A config built in Python (not from --set) is checked the same way: types too."""
    base = load_config("vae_digits")
    for bad, key in [
        (dataclasses.replace(base, train=dataclasses.replace(base.train, batch_size=10.0)),
         "train.batch_size"),
        (dataclasses.replace(base, train=dataclasses.replace(base.train, progress="yes")),
         "train.progress"),
        (dataclasses.replace(base, model=dataclasses.replace(base.model, hidden=[200, "x"])),
         "model.hidden[1]"),
        (dataclasses.replace(base, optim=dataclasses.replace(base.optim, learning_rate=math.nan)),
         "optim.learning_rate"),
    ]:
        with pytest.raises(ConfigValueError, match=re.escape(key)):
            check_config(bad)
