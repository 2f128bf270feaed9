"""Data: the input pipelines, the built-in shapes dataset, and reading images from files."""
