"""tunesmith.track: the run folder (the record) and the trackers that mirror it.

Importing the package registers every tracker; each imports its own package (mlflow, wandb, tensorboard) only
when it is created, so the registrations cost nothing.
"""

from tunesmith.track import mlflow_tracker, tensorboard_tracker, wandb_tracker  # noqa: F401  (registers them)
