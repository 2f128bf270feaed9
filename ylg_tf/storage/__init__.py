"""What a run keeps on disk: the work directory, atomic files, the run lock, the SavedModel export and the official checkpoint's import."""
