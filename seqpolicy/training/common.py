"""What every trainer shares, in one import: the shared set-up and loop (``Trainer``), run settings, inputs, the
training loop, checkpoints, metric logs, schedules, the speed settings, torchrun's process group, the run folder's
guard and the stop on a signal. Each concern lives in its own module (trainer, settings, inputs, run, checkpoint,
metrics, schedules, speed, distributed, run_folder, interrupt); this module only gathers their names for users.
"""

from seqpolicy.training.checkpoint import (
    TRAINER_STATE,
    TRAINER_WEIGHTS,
    find_checkpoint,
    load_trainer_state,
    replace_folder,
    save_checkpoint,
    saved_train_config,
)
from seqpolicy.training.distributed import Distributed
from seqpolicy.training.distributed import setup as setup_distributed
from seqpolicy.training.inputs import env_spaces, resolve_dataset
from seqpolicy.training.interrupt import TrainingInterrupted
from seqpolicy.training.metrics import MetricLogger
from seqpolicy.training.run import TrainingRun, eval_metrics
from seqpolicy.training.run_folder import check_run_folder, clear_run_folder
from seqpolicy.training.schedules import warmup_constant, warmup_cosine
from seqpolicy.training.settings import PRECISIONS, RESUMABLE_CHANGES, RunSettings
from seqpolicy.training.trainer import Built, Trainer, model_config

__all__ = ["PRECISIONS", "RESUMABLE_CHANGES", "TRAINER_STATE", "TRAINER_WEIGHTS", "Built", "Distributed",
           "MetricLogger", "RunSettings", "Trainer", "TrainingInterrupted", "TrainingRun", "check_run_folder",
           "clear_run_folder", "env_spaces", "eval_metrics", "find_checkpoint", "load_trainer_state", "model_config",
           "replace_folder", "resolve_dataset", "save_checkpoint", "saved_train_config", "setup_distributed",
           "warmup_constant", "warmup_cosine"]
