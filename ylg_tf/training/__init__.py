"""Training: the trainer (one step, the inner loop), the losses, the strategy, and the outer loop of a run."""
