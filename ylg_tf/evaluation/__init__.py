"""Scoring generators: IS/FID metrics, the classifiers, the real-data statistics cache and the evaluation itself."""
