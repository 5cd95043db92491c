"""Small helpers shared by every layer: artifacts on disk, spaces, devices and seeds."""
