"""Find and load experiment configs (``experiments/<name>.py`` files defining ``get_config()``).

A config is named either by a path to its file or by its name, looked up in, in order:
``$GENJAX_EXPERIMENTS`` (a folder), ``./experiments`` and the ``experiments/`` folder of the
genjax source tree this package was installed from.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from genjax.train.config import Config, apply_overrides
from genjax.train.method import check_config


def experiment_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("GENJAX_EXPERIMENTS"):
        dirs.append(Path(os.environ["GENJAX_EXPERIMENTS"]))
    dirs.append(Path.cwd() / "experiments")
    dirs.append(Path(__file__).resolve().parent.parent / "experiments")
    seen, out = set(), []
    for d in dirs:
        if d.is_dir() and d.resolve() not in seen:
            seen.add(d.resolve())
            out.append(d)
    return out


def available_configs() -> dict[str, Path]:
    """``{name: path}`` of every experiment config found (first folder wins)."""
    found: dict[str, Path] = {}
    for d in experiment_dirs():
        for path in sorted(d.glob("*.py")):
            if not path.name.startswith("_"):
                found.setdefault(path.stem, path)
    return found


def config_path(name_or_path: str) -> Path:
    """The file of a config given by name or path; unknown names list the known ones."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".py" or os.sep in name_or_path:
        if not candidate.is_file():
            raise FileNotFoundError(f"config file {candidate} does not exist")
        return candidate
    configs = available_configs()
    if name_or_path not in configs:
        known = ", ".join(sorted(configs)) or "(none found)"
        where = ", ".join(str(d) for d in experiment_dirs()) or "no experiments/ folder found"
        raise ValueError(
            f"unknown config {name_or_path!r}. Known configs: {known} (searched: {where})"
        )
    return configs[name_or_path]


def load_config(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Imports the config file, calls its ``get_config()`` and applies ``--set`` overrides."""
    path = config_path(name_or_path)
    spec = importlib.util.spec_from_file_location(f"genjax_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"config file {path} defines no get_config() function")
    config = module.get_config()
    if not isinstance(config, Config):
        raise TypeError(f"{path}: get_config() must return genjax.train.Config, got {type(config)}")
    config = apply_overrides(config, list(overrides))
    check_config(config)  # one line naming a bad key and value, before any data is read
    return config
