"""Trainers that turn trajectories into agents."""
