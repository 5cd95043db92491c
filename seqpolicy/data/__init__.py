"""Offline datasets: the trajectory container, its statistics and its sources."""
