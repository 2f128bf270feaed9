"""Scoring generators: IS/FID and further sample metrics, the classifiers, the real-data statistics cache and the evaluation itself."""
