"""Input pipelines: one entry point, `make_dataset`, for every dataset training and evaluation use.

Every pipeline yields (images float32 [batch, H, W, 3] in [-1, 1], labels int32 [batch]) with
static shapes (drop_remainder=True). Real images get the original SAGAN/YLG preprocessing
(TF-GAN `self_attention_estimator/data_provider.py`): the largest central square (offsets
rounded up), bilinear resize with corners aligned, then x * 2 / 255 - 1; no flips.

Datasets:
- "builtin": procedurally generated coloured shapes (`ylg_tf.data.builtin_shapes`), no download.
- "imagenet2012", "cifar10", "imagenet_resized/32x32", "imagenet_resized/64x64": TFDS datasets
  that must already be prepared in `data_dir` (this module never downloads: a missing dataset
  raises FileNotFoundError saying where it looked and how to prepare it).
- "folder": `data_dir` holds one sub-folder per class (classes = sorted sub-folder names) of
  JPEG/PNG/BMP/GIF images; grayscale and RGBA images are converted to RGB.

With a `tf.distribute.InputContext`, each input pipeline reads a disjoint part of the split
(contiguous ranges for TFDS and folders, example indices mod the pipeline count for "builtin").
"""

import dataclasses
import logging
import os
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf
from PIL import Image

from ylg_tf.data import builtin_shapes

DATASET_NAMES = (
    "builtin",
    "imagenet2012",
    "cifar10",
    "imagenet_resized/32x32",
    "imagenet_resized/64x64",
    "folder",
)
FOLDER_IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
SHUFFLE_BUFFER_SIZE = 10000
MINIMUM_IMAGE_SIZE = 8
MAXIMUM_IMAGE_SIZE = 1024


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset.

    image_size is the native side of the (square) images, or None when sizes vary.
    num_classes is None for "folder" when no data_dir was given.
    """

    name: str
    num_classes: Optional[int]
    image_size: Optional[int]
    splits: Tuple[str, ...]
    evaluation_split: str


_STATIC_INFOS = {
    "builtin": DatasetInfo(
        "builtin", builtin_shapes.NUM_CLASSES, None, builtin_shapes.SPLITS, "validation"
    ),
    "imagenet2012": DatasetInfo("imagenet2012", 1000, None, ("train", "validation"), "validation"),
    "cifar10": DatasetInfo("cifar10", 10, 32, ("train", "test"), "test"),
    "imagenet_resized/32x32": DatasetInfo(
        "imagenet_resized/32x32", 1000, 32, ("train", "validation"), "validation"
    ),
    "imagenet_resized/64x64": DatasetInfo(
        "imagenet_resized/64x64", 1000, 64, ("train", "validation"), "validation"
    ),
    "folder": DatasetInfo("folder", None, None, ("train",), "train"),
}
_TFDS_NAMES = ("imagenet2012", "cifar10", "imagenet_resized/32x32", "imagenet_resized/64x64")


def _check_name(name):
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown dataset name {name!r}; expected one of {DATASET_NAMES}")


def dataset_info(name, data_dir=None) -> DatasetInfo:
    """Facts about dataset `name`; for "folder", give data_dir to get the class count."""
    _check_name(name)
    info = _STATIC_INFOS[name]
    if name == "folder" and data_dir is not None:
        info = dataclasses.replace(info, num_classes=len(_folder_class_names(data_dir)))
    return info


# ----------------------------------------------------------------------------------------------
# Preprocessing shared by real-image datasets.


def preprocess_image(image, image_size):
    """Largest central square, bilinear resize with aligned corners, scaled to [-1, 1].

    image: uint8 (or float in [0, 255]) [H, W, 3]. Returns float32 [image_size, image_size, 3].
    The crop offsets are rounded up, as in the original (and improved-GAN) preprocessing.
    """
    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    side = tf.minimum(height, width)
    top = (height - side + 1) // 2
    left = (width - side + 1) // 2
    square = tf.cast(image[top : top + side, left : left + side, :], tf.float32)
    resized = tf.compat.v1.image.resize(
        square,
        [image_size, image_size],
        method=tf.compat.v1.image.ResizeMethod.BILINEAR,
        align_corners=True,
    )
    # Bilinear weights are convex, so the clip only removes float rounding.
    scaled = tf.clip_by_value(resized * (2.0 / 255.0) - 1.0, -1.0, 1.0)
    return tf.ensure_shape(scaled, [image_size, image_size, 3])


def _decode_and_preprocess(encoded_image, label, image_size):
    # channels=3 turns grayscale into RGB and drops alpha; a GIF gives its first frame.
    image = tf.io.decode_image(encoded_image, channels=3, expand_animations=False)
    return preprocess_image(image, image_size), tf.cast(label, tf.int32)


# ----------------------------------------------------------------------------------------------
# Folder of class sub-folders.


def _folder_class_names(data_dir):
    if data_dir is None:
        raise FileNotFoundError("the 'folder' dataset needs data_dir (a folder of class folders)")
    data_dir = os.fspath(data_dir)
    if not tf.io.gfile.isdir(data_dir):
        raise FileNotFoundError(f"folder dataset: data_dir {data_dir!r} is not a directory")
    return sorted(
        entry.rstrip("/")
        for entry in tf.io.gfile.listdir(data_dir)
        if not entry.startswith(".") and tf.io.gfile.isdir(os.path.join(data_dir, entry))
    )


def _folder_files(data_dir):
    """(paths, labels) of every image under the class folders, in a fixed shuffled order.

    The order is a fixed permutation of the sorted list, independent of any seed, so that
    `num_examples` selects the same mixed-class subset every time (as TFDS slicing does).
    """
    class_names = _folder_class_names(data_dir)
    paths, labels = [], []
    for label, class_name in enumerate(class_names):
        class_directory = os.path.join(os.fspath(data_dir), class_name)
        for directory, subdirectories, file_names in tf.io.gfile.walk(class_directory):
            subdirectories.sort()
            for file_name in sorted(file_names):
                if file_name.lower().endswith(FOLDER_IMAGE_EXTENSIONS):
                    paths.append(os.path.join(directory, file_name))
                    labels.append(label)
    if not paths:
        raise FileNotFoundError(
            f"folder dataset: no images ({', '.join(FOLDER_IMAGE_EXTENSIONS)}) in class "
            f"sub-folders of {os.fspath(data_dir)!r}"
        )
    order = np.random.default_rng(0).permutation(len(paths))
    return [paths[index] for index in order], [labels[index] for index in order]


def check_folder_images(data_dir):
    """Raises ValueError naming the first file of a folder dataset whose header is not a readable image.

    The pipeline decodes inside the training loop, where a bad file would stop the run with TensorFlow's
    error and no file name; this looks at every file's header first (a fraction of a millisecond each on a
    local disk). Folders on remote file systems (gs://) are not checked: one request per file would take
    longer than the check is worth.
    """
    if "://" in os.fspath(data_dir):
        return
    for path in _folder_files(data_dir)[0]:
        try:
            with tf.io.gfile.GFile(path, "rb") as file, Image.open(file) as picture:
                picture.verify()
        except Exception as error:  # noqa: BLE001 - PIL raises many kinds for a damaged file
            detail = " ".join(str(error).split())[:200] or type(error).__name__
            raise ValueError(f"folder dataset: {path!r} is not a readable image ({detail})") from None


# ----------------------------------------------------------------------------------------------
# TFDS.


def _tfds_builder(name, data_dir):
    """A prepared TFDS builder, or FileNotFoundError explaining how to prepare it."""
    import tensorflow_datasets as tfds  # Imported lazily: only TFDS datasets need it.

    builder = tfds.builder(name, data_dir=None if data_dir is None else os.fspath(data_dir))
    if not builder.is_prepared():
        root = builder.data_dir_root
        if name == "imagenet2012":
            how = (
                f"put ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in "
                f"{os.path.join(root, 'downloads', 'manual')} and run "
                f"`tfds build imagenet2012 --data_dir={root}`"
            )
        else:
            how = f"run `tfds build {name} --data_dir={root}` on a machine with internet access"
        raise FileNotFoundError(
            f"TFDS dataset {name!r} is not prepared (looked in {builder.data_dir}); {how}"
        )
    return builder


def _tfds_split_size(builder, name, split):
    splits = builder.info.splits
    if split not in splits:
        raise ValueError(
            f"split {split!r} is not in the prepared {name!r} dataset; it has {sorted(splits)}"
        )
    return splits[split].num_examples


# ----------------------------------------------------------------------------------------------
# Public helpers.


def class_names(name, data_dir=None):
    """Class names in label order."""
    _check_name(name)
    if name == "builtin":
        return builtin_shapes.CLASS_NAMES
    if name == "folder":
        return tuple(_folder_class_names(data_dir))
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=None if data_dir is None else os.fspath(data_dir))
    return tuple(builder.info.features["label"].names)


def count_examples(name, split, data_dir=None):
    """Number of examples in a split; None for "builtin", whose streams are unbounded."""
    _check_name(name)
    _check_split(name, split)
    if name == "builtin":
        return None
    if name == "folder":
        return len(_folder_files(data_dir)[0])
    return _tfds_split_size(_tfds_builder(name, data_dir), name, split)


def _check_split(name, split):
    splits = _STATIC_INFOS[name].splits
    if split not in splits:
        hint = " (point data_dir at another folder for evaluation)" if name == "folder" else ""
        raise ValueError(
            f"split {split!r} is not a split of {name!r}; expected one of {splits}{hint}"
        )


def _check_positive_integer(argument_name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{argument_name} must be a positive integer, got {value!r}")


def _shard_range(total, num_pipelines, pipeline_id):
    """The contiguous [start, end) slice of `total` examples read by one input pipeline."""
    return total * pipeline_id // num_pipelines, total * (pipeline_id + 1) // num_pipelines


def _check_enough_examples(name, split, count, batch_size, num_pipelines):
    if count < batch_size:
        raise ValueError(
            f"dataset {name!r} split {split!r} gives {count} examples per input pipeline "
            f"({num_pipelines} pipelines), fewer than one batch of {batch_size}"
        )


def make_dataset(
    name,
    *,
    split,
    image_size,
    batch_size,
    data_dir=None,
    shuffle=True,
    repeat=True,
    seed=0,
    input_context=None,
    num_examples=None,
):
    """Batched (images, labels) pipeline for one input pipeline.

    Args:
      name: one of DATASET_NAMES.
      split: a split listed in `dataset_info(name).splits`.
      image_size: side of the output images.
      batch_size: per-replica batch size (the batch this pipeline yields).
      data_dir: TFDS data directory (None: the TFDS default) or, for "folder", the folder.
      shuffle: shuffle examples (buffer of 10000, or the whole shard if smaller).
      repeat: repeat forever; otherwise one pass (the last partial batch is dropped).
      seed: seeds shuffling and, for "builtin", the generated examples themselves.
      input_context: a tf.distribute.InputContext; this pipeline then reads only its part.
      num_examples: use only the first num_examples of the split (for "builtin": a finite
        dataset of that many examples; default infinite).

    Returns:
      tf.data.Dataset of (float32 [batch_size, image_size, image_size, 3] in [-1, 1],
      int32 [batch_size]).
    """
    _check_name(name)
    _check_split(name, split)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not (
        MINIMUM_IMAGE_SIZE <= image_size <= MAXIMUM_IMAGE_SIZE
    ):
        raise ValueError(
            f"image_size must be an integer in [{MINIMUM_IMAGE_SIZE}, {MAXIMUM_IMAGE_SIZE}], "
            f"got {image_size!r}"
        )
    _check_positive_integer("batch_size", batch_size)
    if num_examples is not None:
        _check_positive_integer("num_examples", num_examples)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if input_context is None:
        num_pipelines, pipeline_id = 1, 0
    else:
        num_pipelines = input_context.num_input_pipelines
        pipeline_id = input_context.input_pipeline_id
        if not 0 <= pipeline_id < num_pipelines:
            raise ValueError(
                f"input_context.input_pipeline_id {pipeline_id} is outside "
                f"[0, {num_pipelines})"
            )

    if name == "builtin":
        if num_examples is not None:
            count = len(range(pipeline_id, num_examples, num_pipelines))
            _check_enough_examples(name, split, count, batch_size, num_pipelines)
        dataset = builtin_shapes.builtin_shapes_dataset(
            image_size,
            seed,
            num_examples,
            split=split,
            num_shards=num_pipelines,
            shard_index=pipeline_id,
        )
        # An infinite stream is already i.i.d.; only a finite one has an order to shuffle.
        if shuffle and num_examples is not None:
            dataset = dataset.shuffle(min(count, SHUFFLE_BUFFER_SIZE), seed=seed)
        if repeat:
            dataset = dataset.repeat()
    else:
        if name == "folder":
            paths, labels = _folder_files(data_dir)
            total = len(paths) if num_examples is None else min(len(paths), num_examples)
            start, end = _shard_range(total, num_pipelines, pipeline_id)
            count = end - start
            _check_enough_examples(name, split, count, batch_size, num_pipelines)
            dataset = tf.data.Dataset.from_tensor_slices(
                (tf.constant(paths[start:end]), tf.constant(labels[start:end], tf.int32))
            )
            # Shuffle file names, not decoded images: cheap for a 10000 buffer.
            if shuffle:
                dataset = dataset.shuffle(min(count, SHUFFLE_BUFFER_SIZE), seed=seed)
            if repeat:
                dataset = dataset.repeat()
            dataset = dataset.map(
                lambda path, label: (tf.io.read_file(path), label),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        else:
            import tensorflow_datasets as tfds

            builder = _tfds_builder(name, data_dir)
            total = _tfds_split_size(builder, name, split)
            if num_examples is not None:
                total = min(total, num_examples)
            start, end = _shard_range(total, num_pipelines, pipeline_id)
            count = end - start
            _check_enough_examples(name, split, count, batch_size, num_pipelines)
            dataset = builder.as_dataset(
                split=f"{split}[{start}:{end}]",
                shuffle_files=shuffle,
                # Keep images encoded until after the shuffle buffer (10000 decoded ImageNet
                # images would take gigabytes).
                decoders={"image": tfds.decode.SkipDecoding()},
                read_config=tfds.ReadConfig(shuffle_seed=seed),
            )
            dataset = dataset.map(
                lambda example: (example["image"], example["label"]),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            if shuffle:
                dataset = dataset.shuffle(min(count, SHUFFLE_BUFFER_SIZE), seed=seed)
            if repeat:
                dataset = dataset.repeat()
        dataset = dataset.map(
            lambda encoded, label: _decode_and_preprocess(encoded, label, image_size),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        logging.info(
            "dataset %s split %s: pipeline %d of %d reads examples [%d, %d)",
            name, split, pipeline_id, num_pipelines, start, end,
        )

    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def examples_by_class(name, *, split, image_size, classes, per_class, data_dir=None, seed=0,
                      maximum_examples=100_000):
    """The first `per_class` examples of each of `classes`, read in the split's order (unshuffled).

    Returns float32 images [len(classes) * per_class, image_size, image_size, 3] in [-1, 1], class after
    class (the rows of `ylg_tf.pictures.class_grid_picture`). ValueError names a class with too few examples
    among the first `maximum_examples`.
    """
    _check_positive_integer("per_class", per_class)
    found = {int(label): [] for label in classes}
    batches = make_dataset(name, split=split, image_size=image_size, batch_size=min(256, maximum_examples),
                           data_dir=data_dir, shuffle=False, repeat=False, seed=seed,
                           num_examples=maximum_examples if name == "builtin" else None)
    seen = 0
    for images, labels in batches:
        for image, label in zip(images.numpy(), labels.numpy()):
            if int(label) in found and len(found[int(label)]) < per_class:
                found[int(label)].append(image)
        seen += len(labels)
        if all(len(rows) == per_class for rows in found.values()) or seen >= maximum_examples:
            break
    short = [label for label, rows in found.items() if len(rows) < per_class]
    if short:
        raise ValueError(f"class {short[0]} has {len(found[short[0]])} of the {per_class} examples asked for "
                         f"among the first {seen} of {name!r} {split!r}")
    return np.concatenate([np.stack(found[int(label)]) for label in classes])
