"""Baseline batch policies; they share jest's training loop and differ only by selection."""
