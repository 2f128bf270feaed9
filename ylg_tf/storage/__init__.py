"""What a run keeps on disk: the checkpoint layout, the work directory, atomic files, the run lock, the SavedModel
export and the official checkpoint's import."""
