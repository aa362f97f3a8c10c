"""lfrsim: a discrete-event simulator of police Live Facial Recognition deployments.

``sim.run(path_or_experiment)`` runs an experiment and returns its ``Results``;
``sim.load_experiment(path)`` reads and validates an experiment file.
"""

from .config import ConfigError, Experiment, load_experiment
from .pipeline import run

__all__ = ["ConfigError", "Experiment", "load_experiment", "run", "__version__"]
__version__ = "0.1.0"
