"""lfrsim: a discrete-event simulator of police Live Facial Recognition deployments."""

from .config import ConfigError, Experiment, load_experiment

__all__ = ["ConfigError", "Experiment", "load_experiment", "run", "__version__"]
__version__ = "0.1.0"


def run(experiment, replications=None, seed=None, workers=1, out=None, **kwargs):
    """Run an experiment (an ``Experiment`` or a path) and return its ``Results``.

    ``replications`` and ``seed`` override the experiment's; ``out`` writes a results folder.
    """
    from .sweep import run_experiment

    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment)
    return run_experiment(experiment, replications=replications, seed=seed, workers=workers, out=out,
                          **kwargs)
