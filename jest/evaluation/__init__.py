"""Evaluation stage: the BIG-bench source package, lm-eval task building, checkpoint evaluation, aggregation."""

from jest.evaluation.evaluate import AGGREGATE_VERSION, aggregate, check_task_data, evaluate_checkpoint
from jest.evaluation.tasks import build_tasks, load_table

__all__ = ["AGGREGATE_VERSION", "aggregate", "build_tasks", "check_task_data", "evaluate_checkpoint", "load_table"]
