"""lfrsim: a discrete-event simulator of police Live Facial Recognition deployments."""

from . import run as _run_module  # noqa: F401 - loaded first, so the function below keeps the name
from .config import ConfigError, Experiment, load_experiment

__all__ = ["ConfigError", "Experiment", "load_experiment", "run", "__version__"]
__version__ = "0.1.0"


def run(experiment, replications=None, seed=None, workers=1, out=None, **kwargs):
    """Run an experiment (an ``Experiment`` or a path) and return its ``Results``.

    ``replications`` and ``seed`` override the experiment's; ``workers`` > 1 uses local processes;
    ``out`` writes a results folder; ``scheduler``, ``resume`` and ``progress`` are passed on to
    ``sim.sweep.run_experiment``. ``Results.summary`` is the per cell x group x metric table.

    (The module ``sim.run`` is imported above, before this function is defined, because importing
    a submodule sets it as an attribute of the package the first time: were it loaded later, it
    would replace this function.)
    """
    from .sweep import run_experiment

    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment)
    return run_experiment(experiment, replications=replications, seed=seed, workers=workers, out=out,
                          **kwargs)
