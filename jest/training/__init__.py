"""The one training loop every arm shares (jest.training.trainer) and what it is built from:
the run's spec and identity, the schedule, the optimizer step, checkpoints, wsd branches."""
