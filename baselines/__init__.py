"""Supervised and RL baselines, analyses and the ``memory-envs`` command."""
