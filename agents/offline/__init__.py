"""Pieces shared by the offline learners: networks and the nearest-neighbour search."""
