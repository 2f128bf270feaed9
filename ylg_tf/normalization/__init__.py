"""Normalization layers: spectral normalization and cross-replica conditional batch normalization."""
