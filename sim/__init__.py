"""lfrsim: a discrete-event simulator of police Live Facial Recognition deployments.

``sim.run(path_or_experiment)`` runs an experiment and returns its ``Results``;
``sim.load_experiment(path)`` reads and validates an experiment file.

``import sim`` loads nothing else: each of these names imports its module the first time it is
used (PEP 562), so a command or a script pays only for what it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import ConfigError, Experiment, load_experiment
    from .pipeline import run

__all__ = ["ConfigError", "Experiment", "load_experiment", "run", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("ConfigError", "Experiment", "load_experiment"):
        from . import config

        value = getattr(config, name)
    elif name == "run":
        from .pipeline import run as value
    else:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
