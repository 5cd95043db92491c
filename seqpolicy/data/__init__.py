"""Offline datasets: the trajectory container, its statistics and its sources.

``load_trajectories(source, env_id=None)`` reads a local Minari dataset id or folder, a D4RL-format HDF5
file or a seqpolicy ``.npz`` (Minari and h5py are imported only when such a source is read).
"""

from seqpolicy.data.sources import load_trajectories
from seqpolicy.data.trajectories import Episode, Trajectories

__all__ = ["Episode", "Trajectories", "load_trajectories"]
