"""Tests for ylg_tf.data.builtin_shapes and ylg_tf.data.datasets against NumPy/PIL references."""

import importlib.resources
import os
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from ylg_tf.data import builtin_shapes
from ylg_tf.data import datasets


# ----------------------------------------------------------------------------------------------
# References and helpers.


def reference_preprocess(image, image_size):
    """NumPy version of the original preprocessing: central square with offsets rounded up,
    bilinear resize with aligned corners, x * 2 / 255 - 1."""
    image = np.asarray(image, np.float64)
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = int(np.ceil((height - side) / 2)), int(np.ceil((width - side) / 2))
    square = image[top : top + side, left : left + side]
    source = np.arange(image_size) * (side - 1) / (image_size - 1)  # aligned corners
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, side - 1)
    fraction = source - low
    rows = square[low] * (1 - fraction)[:, None, None] + square[high] * fraction[:, None, None]
    resized = rows[:, low] * (1 - fraction)[None, :, None] + rows[:, high] * fraction[None, :, None]
    return resized * 2 / 255 - 1


def collect(dataset, max_batches=50):
    """All batches of a finite dataset, concatenated (fails rather than looping forever)."""
    images, labels = [], []
    for image_batch, label_batch in dataset.take(max_batches + 1):
        images.append(image_batch.numpy())
        labels.append(label_batch.numpy())
    assert len(images) <= max_batches, "the dataset does not end"
    return np.concatenate(images), np.concatenate(labels)


def match_to_references(images, labels, references, reference_labels, atol):
    """Each output must equal one reference image (within atol) and carry its label.

    Returns the matched reference indices."""
    matched = []
    for image, label in zip(images, labels):
        errors = [np.abs(image - reference).max() for reference in references]
        best = int(np.argmin(errors))
        assert errors[best] < atol, f"no reference within {atol}: best error {errors[best]}"
        assert label == reference_labels[best]
        matched.append(best)
    return matched


def check_batch_format(images, labels, batch_size, image_size):
    assert images.shape == (batch_size, image_size, image_size, 3)
    assert images.dtype == tf.float32
    assert labels.shape == (batch_size,)
    assert labels.dtype == tf.int32
    assert -1.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0


def two_pipelines():
    return [
        tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline_id)
        for pipeline_id in range(2)
    ]


# ----------------------------------------------------------------------------------------------
# Built-in shapes.


def test_builtin_batches_have_static_shapes_dtypes_and_range():
    dataset = datasets.make_dataset("builtin", split="train", image_size=16, batch_size=4, seed=1)
    assert dataset.element_spec[0].shape == (4, 16, 16, 3)
    assert dataset.element_spec[1].shape == (4,)
    for images, labels in dataset.take(2):
        check_batch_format(images, labels, 4, 16)
        assert np.all((labels.numpy() >= 0) & (labels.numpy() < builtin_shapes.NUM_CLASSES))
        # Both a saturated shape and a grey background are present in every image.
        saturation = tf.reduce_max(images, -1) - tf.reduce_min(images, -1)  # [B, H, W]
        assert np.all(tf.reduce_max(saturation, axis=[1, 2]).numpy() > 0.8)
        assert np.all(tf.reduce_min(saturation, axis=[1, 2]).numpy() < 1e-6)


def test_builtin_is_deterministic_per_seed_and_split():
    def first_batches(seed, split="train"):
        dataset = datasets.make_dataset(
            "builtin", split=split, image_size=16, batch_size=8, seed=seed
        )
        return collect(dataset.take(2))

    images, labels = first_batches(5)
    images_again, labels_again = first_batches(5)
    np.testing.assert_array_equal(images, images_again)
    np.testing.assert_array_equal(labels, labels_again)
    for other_images, _ in (first_batches(6), first_batches(5, "validation")):
        assert np.abs(images - other_images).max(axis=(1, 2, 3)).min() > 0.1


def test_builtin_example_does_not_depend_on_sharding_and_any_size_works():
    whole = collect(builtin_shapes.builtin_shapes_dataset(24, 3, 6).batch(6))
    odd = collect(
        builtin_shapes.builtin_shapes_dataset(24, 3, 6, num_shards=2, shard_index=1).batch(3)
    )
    np.testing.assert_array_equal(odd[0], whole[0][1::2])
    np.testing.assert_array_equal(odd[1], whole[1][1::2])
    for image_size in (8, 17, 128):
        image, label = next(iter(builtin_shapes.builtin_shapes_dataset(image_size, 0)))
        assert image.shape == (image_size, image_size, 3) and label.dtype == tf.int32


def _shape_features(images):
    """Per image: mean colour of the shape, and three rotation-tolerant shape statistics."""
    image01 = (images + 1) / 2
    foreground = image01.max(-1) - image01.min(-1) > 0.35  # the background is grey
    rows, columns = np.mgrid[0 : images.shape[1], 0 : images.shape[2]]
    features = []
    for index in range(len(images)):
        mask = foreground[index]
        row, column = rows[mask], columns[mask]
        centre_row, centre_column = row.mean(), column.mean()
        distance = np.hypot(row - centre_row, column - centre_column)
        reach = distance.max() + 0.5
        box_area = (np.ptp(row) + 1) * (np.ptp(column) + 1)
        has_hole = not mask[int(round(centre_row)), int(round(centre_column))]
        features.append(
            [
                *image01[index][mask].mean(0),
                mask.sum() / (np.pi * reach**2),
                mask.sum() / box_area,
                float(has_hole),
                distance.mean() / reach,
            ]
        )
    return np.array(features)


def test_builtin_classes_all_appear_and_need_both_shape_and_colour():
    def load(split, count):
        return collect(
            datasets.make_dataset(
                "builtin", split=split, image_size=32, batch_size=count, seed=3,
                num_examples=count, shuffle=False, repeat=False,
            )
        )

    train_images, train_labels = load("train", 600)
    test_images, test_labels = load("validation", 300)
    counts = np.bincount(train_labels, minlength=builtin_shapes.NUM_CLASSES)
    assert counts.min() >= 30  # 60 expected per class
    train_features, test_features = _shape_features(train_images), _shape_features(test_images)
    mean, deviation = train_features.mean(0), train_features.std(0)

    def nearest_class_mean_accuracy(columns):
        train = (train_features[:, columns] - mean[columns]) / deviation[columns]
        test = (test_features[:, columns] - mean[columns]) / deviation[columns]
        class_means = np.stack(
            [train[train_labels == label].mean(0) for label in range(builtin_shapes.NUM_CLASSES)]
        )
        distances = ((test[:, None] - class_means[None]) ** 2).sum(-1)
        return np.mean(np.argmin(distances, axis=1) == test_labels)

    # Chance is 0.1. Colour or shape alone each identify only pairs of classes.
    assert nearest_class_mean_accuracy([0, 1, 2, 3, 4, 5, 6]) > 0.9
    assert nearest_class_mean_accuracy([0, 1, 2]) < 0.7
    assert nearest_class_mean_accuracy([3, 4, 5, 6]) < 0.7
    assert len(set(builtin_shapes.CLASS_NAMES)) == builtin_shapes.NUM_CLASSES


def test_builtin_two_input_pipelines_read_disjoint_halves():
    whole_images, whole_labels = collect(
        builtin_shapes.builtin_shapes_dataset(16, 2, 8, split="validation").batch(8)
    )
    for context in two_pipelines():
        images, labels = collect(
            datasets.make_dataset(
                "builtin", split="validation", image_size=16, batch_size=4, seed=2,
                num_examples=8, shuffle=False, repeat=False, input_context=context,
            )
        )
        pipeline_id = context.input_pipeline_id
        np.testing.assert_array_equal(images, whole_images[pipeline_id::2])
        np.testing.assert_array_equal(labels, whole_labels[pipeline_id::2])


# ----------------------------------------------------------------------------------------------
# Folder of class folders.

# class folder, file name, PIL mode, (height, width)
_FOLDER_IMAGES = (
    ("zebra", "a.png", "RGB", (23, 14)),
    ("zebra", "b.JPG", "RGB", (17, 24)),
    ("apple", "c.png", "L", (15, 26)),
    ("apple", "d.png", "RGBA", (19, 12)),
    ("mango", "e.bmp", "RGB", (13, 22)),
    ("mango", "nested/f.gif", "RGB", (18, 11)),
)
_FOLDER_CLASSES = ("apple", "mango", "zebra")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """A folder of class folders; returns (path, reference RGB arrays, labels, is_jpeg)."""
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    references, labels, is_jpeg = [], [], []
    for class_name, file_name, mode, (height, width) in _FOLDER_IMAGES:
        path = root / class_name / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
        # Smooth random images, so a JPEG stays close to its source.
        coarse = rng.integers(0, 256, size=(4, 4, channels)).astype(np.uint8)
        pixels = np.asarray(Image.fromarray(coarse.squeeze()).resize((width, height)))
        Image.fromarray(pixels, mode).save(path)
        # Reference: what PIL decodes back, converted to RGB (drops alpha, repeats gray).
        with Image.open(path) as stored:
            references.append(np.asarray(stored.convert("RGB")))
        labels.append(_FOLDER_CLASSES.index(class_name))
        is_jpeg.append(file_name.lower().endswith(".jpg"))
    (root / "zebra" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    return root, references, labels, is_jpeg


@pytest.mark.parametrize("image_size", [8, 32])
def test_folder_crops_resizes_and_labels_by_sorted_folder_names(image_folder, image_size):
    root, references, labels, is_jpeg = image_folder
    assert datasets.class_names("folder", root) == _FOLDER_CLASSES
    assert datasets.dataset_info("folder", root).num_classes == 3
    assert datasets.count_examples("folder", "train", root) == len(_FOLDER_IMAGES)
    images, output_labels = collect(
        datasets.make_dataset(
            "folder", split="train", image_size=image_size, batch_size=2, data_dir=root,
            shuffle=False, repeat=False,
        )
    )
    assert images.dtype == np.float32 and output_labels.dtype == np.int32
    expected = [reference_preprocess(reference, image_size) for reference in references]
    # Lossless formats match exactly; JPEG decoders may differ by a few grey levels.
    seen = []
    for image, label in zip(images, output_labels):
        errors = [np.abs(image - reference).max() for reference in expected]
        best = int(np.argmin(errors))
        assert errors[best] < (0.05 if is_jpeg[best] else 1e-5)
        assert label == labels[best]
        seen.append(best)
    assert sorted(seen) == list(range(len(_FOLDER_IMAGES)))


def test_folder_shuffle_is_seeded_and_pipelines_are_disjoint(image_folder):
    root = image_folder[0]

    def read(**options):
        return collect(
            datasets.make_dataset(
                "folder", split="train", image_size=8, batch_size=1, data_dir=root,
                repeat=False, **options,
            )
        )

    in_order, _ = read(shuffle=False)
    shuffled, _ = read(shuffle=True, seed=4)
    np.testing.assert_array_equal(shuffled, read(shuffle=True, seed=4)[0])
    assert sorted(map(bytes, shuffled)) == sorted(map(bytes, in_order))
    halves = [read(shuffle=True, seed=4, input_context=context)[0] for context in two_pipelines()]
    # Pipeline i reads the i-th contiguous half of the stored order, shuffled within itself.
    assert sorted(map(bytes, halves[0])) == sorted(map(bytes, in_order[:3]))
    assert sorted(map(bytes, halves[1])) == sorted(map(bytes, in_order[3:]))
    two = datasets.make_dataset(
        "folder", split="train", image_size=8, batch_size=2, data_dir=root, num_examples=2,
        shuffle=False, repeat=False,
    )
    np.testing.assert_array_equal(collect(two)[0], in_order[:2])


def test_folder_errors_name_the_bad_path(image_folder, tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        datasets.make_dataset("folder", split="train", image_size=8, batch_size=1, data_dir=missing)
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    (tmp_path / "empty" / "cats" / "readme.txt").write_text("no images")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "empty")):
        datasets.make_dataset(
            "folder", split="train", image_size=8, batch_size=1, data_dir=tmp_path / "empty"
        )
    with pytest.raises(ValueError, match="fewer than one batch of 7"):
        datasets.make_dataset(
            "folder", split="train", image_size=8, batch_size=7, data_dir=image_folder[0]
        )
    with pytest.raises(ValueError, match="'validation'"):
        datasets.make_dataset(
            "folder", split="validation", image_size=8, batch_size=1, data_dir=image_folder[0]
        )


# ----------------------------------------------------------------------------------------------
# TFDS datasets through tfds.testing.mock_data.

_TFDS_MOCK_SPLIT_SIZES = {
    "imagenet2012": {"train": 6, "validation": 4},
    "cifar10": {"train": 6, "test": 4},
    "imagenet_resized/32x32": {"train": 6, "validation": 4},
    "imagenet_resized/64x64": {"train": 6, "validation": 4},
}


@pytest.fixture(scope="module")
def tfds_metadata_directory(tmp_path_factory):
    """TFDS metadata (features, split sizes) so that mocked builders count as prepared."""
    root = tmp_path_factory.mktemp("tfds_metadata")
    for name, split_sizes in _TFDS_MOCK_SPLIT_SIZES.items():
        builder = tfds.builder(name, data_dir=str(root))
        builder.info.set_splits(
            tfds.core.SplitDict(
                [
                    tfds.core.SplitInfo(name=split, shard_lengths=[size], num_bytes=0)
                    for split, size in split_sizes.items()
                ]
            )
        )
        builder.data_path.mkdir(parents=True, exist_ok=True)
        builder.info.write_to_directory(builder.data_path)
    return str(root)


def _mock_tfds(metadata_directory, **options):
    return tfds.testing.mock_data(
        num_examples=6,
        data_dir=metadata_directory,
        policy=tfds.testing.MockPolicy.USE_FILES,
        **options,
    )


@pytest.mark.parametrize(
    "name, image_size",
    [("imagenet2012", 16), ("cifar10", 16), ("imagenet_resized/32x32", 32),
     ("imagenet_resized/64x64", 8)],
)
def test_tfds_datasets_give_batches_in_range(tfds_metadata_directory, name, image_size):
    info = datasets.dataset_info(name)
    with _mock_tfds(tfds_metadata_directory):
        dataset = datasets.make_dataset(
            name, split=info.evaluation_split, image_size=image_size, batch_size=3,
            data_dir="/ignored/by/the/mock", seed=1,
        )
        for images, labels in dataset.take(3):
            check_batch_format(images, labels, 3, image_size)
            assert np.all((labels.numpy() >= 0) & (labels.numpy() < info.num_classes))
            assert float(tf.math.reduce_std(images)) > 0.1
        assert datasets.count_examples(name, "train", "/ignored") == 6


def test_imagenet2012_crop_and_resize_match_the_reference(tfds_metadata_directory):
    # Non-square images whose size differences are odd, so rounding the crop offset matters.
    rng = np.random.default_rng(1)
    sources = [rng.integers(0, 256, size=shape, dtype=np.uint8)
               for shape in [(21, 34, 3), (40, 17, 3), (25, 25, 3), (9, 30, 3)]]
    source_labels = [3, 999, 0, 512]

    def as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
        del self, split, read_config, shuffle_files
        assert decoders is not None  # images stay encoded until after the shuffle buffer
        return tf.data.Dataset.from_tensor_slices(
            {
                "image": [tf.io.encode_png(source).numpy() for source in sources],
                "label": np.array(source_labels, np.int64),
                "file_name": [f"image{index}.JPEG" for index in range(len(sources))],
            }
        )

    for image_size in (12, 64):
        with _mock_tfds(tfds_metadata_directory, as_dataset_fn=as_dataset):
            images, labels = collect(
                datasets.make_dataset(
                    "imagenet2012", split="validation", image_size=image_size, batch_size=4,
                    shuffle=False, repeat=False,
                )
            )
        assert labels.dtype == np.int32
        np.testing.assert_array_equal(labels, source_labels)
        for image, source in zip(images, sources):
            np.testing.assert_allclose(image, reference_preprocess(source, image_size), atol=1e-5)


def test_tfds_dataset_smaller_than_a_batch_raises(tfds_metadata_directory):
    with _mock_tfds(tfds_metadata_directory):
        with pytest.raises(ValueError, match="fewer than one batch of 5"):
            datasets.make_dataset(
                "imagenet2012", split="validation", image_size=8, batch_size=5
            )


# ----------------------------------------------------------------------------------------------
# A really prepared (tiny, fake) CIFAR-10: the unmocked TFDS path, including split slicing.

_CIFAR_EXAMPLES_PER_FILE = 2


@pytest.fixture(scope="module")
def prepared_cifar10(tmp_path_factory):
    """CIFAR-10 prepared by TFDS from fake binary files; returns (data_dir, images, labels)."""
    root = tmp_path_factory.mktemp("cifar10")
    raw = root / "raw" / "cifar-10-batches-bin"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(2)
    split_images = {"train": [], "test": []}
    split_labels = {"train": [], "test": []}
    file_names = [f"data_batch_{index}.bin" for index in range(1, 6)] + ["test_batch.bin"]
    for file_name in file_names:
        split = "test" if file_name.startswith("test") else "train"
        with open(raw / file_name, "wb") as stream:
            for _ in range(_CIFAR_EXAMPLES_PER_FILE):
                label = int(rng.integers(0, 10))
                image = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
                stream.write(bytes([label]) + image.transpose(2, 0, 1).tobytes())
                split_images[split].append(image)
                split_labels[split].append(label)
    (raw / "batches.meta.txt").write_text("".join(f"kind{index}\n" for index in range(10)))
    data_dir = root / "tfds"
    # The TFDS 4.9.10 builder imports `importlib_resources` (absent on Python >= 3.9 installs);
    # the standard library module provides the one attribute it reads.
    with mock.patch(
        "tensorflow_datasets.core.dataset_builder.importlib_resources", importlib.resources
    ), mock.patch.object(
        tfds.download.DownloadManager,
        "download_and_extract",
        lambda self, url: str(root / "raw"),
    ):
        tfds.builder("cifar10", data_dir=str(data_dir)).download_and_prepare()
    return str(data_dir), split_images, split_labels


def test_prepared_cifar10_reads_every_example_once_across_two_pipelines(prepared_cifar10):
    data_dir, split_images, split_labels = prepared_cifar10
    assert datasets.count_examples("cifar10", "train", data_dir) == 10
    assert datasets.class_names("cifar10", data_dir) == tuple(f"kind{index}" for index in range(10))
    references = [reference_preprocess(image, 16) for image in split_images["train"]]
    matched = []
    for context in two_pipelines():
        images, labels = collect(
            datasets.make_dataset(
                "cifar10", split="train", image_size=16, batch_size=5, data_dir=data_dir,
                seed=3, repeat=False, input_context=context,
            )
        )
        assert len(images) == 5
        matched += match_to_references(images, labels, references, split_labels["train"], 1e-5)
    assert sorted(matched) == list(range(10))
    test_images, test_labels = collect(
        datasets.make_dataset(
            "cifar10", split="test", image_size=32, batch_size=2, data_dir=data_dir,
            repeat=False,
        )
    )
    match_to_references(
        test_images,
        test_labels,
        [image.astype(np.float64) * 2 / 255 - 1 for image in split_images["test"]],
        split_labels["test"], 1e-5,
    )


# ----------------------------------------------------------------------------------------------
# Argument errors.


def test_unprepared_tfds_dataset_says_where_it_looked_and_how_to_prepare(tmp_path):
    with pytest.raises(FileNotFoundError) as raised:
        datasets.make_dataset(
            "imagenet2012", split="train", image_size=8, batch_size=1, data_dir=tmp_path
        )
    message = str(raised.value)
    assert str(tmp_path / "imagenet2012") in message
    assert os.path.join(str(tmp_path), "downloads", "manual") in message
    assert "\n" not in message
    with pytest.raises(FileNotFoundError, match="tfds build cifar10"):
        datasets.count_examples("cifar10", "train", tmp_path)


def test_bad_arguments_raise_with_the_bad_value():
    with pytest.raises(ValueError, match="'imagenet'.*builtin.*folder"):
        datasets.make_dataset("imagenet", split="train", image_size=8, batch_size=1)
    with pytest.raises(ValueError, match="'imagenet'"):
        datasets.dataset_info("imagenet")
    with pytest.raises(ValueError, match="'validation'.*'train', 'test'"):
        datasets.make_dataset("cifar10", split="validation", image_size=8, batch_size=1)
    with pytest.raises(ValueError, match="image_size.*4"):
        datasets.make_dataset("builtin", split="train", image_size=4, batch_size=1)
    with pytest.raises(ValueError, match="batch_size.*0"):
        datasets.make_dataset("builtin", split="train", image_size=8, batch_size=0)
    with pytest.raises(ValueError, match="fewer than one batch of 8"):
        datasets.make_dataset(
            "builtin", split="train", image_size=8, batch_size=8, num_examples=7
        )
    with pytest.raises(FileNotFoundError, match="data_dir"):
        datasets.make_dataset("folder", split="train", image_size=8, batch_size=1)


def test_dataset_info_describes_every_dataset():
    assert set(datasets.DATASET_NAMES) == {
        "builtin", "imagenet2012", "cifar10", "imagenet_resized/32x32",
        "imagenet_resized/64x64", "folder",
    }
    for name in datasets.DATASET_NAMES:
        info = datasets.dataset_info(name)
        assert info.name == name and info.evaluation_split in info.splits
    assert datasets.dataset_info("imagenet2012").num_classes == 1000
    assert datasets.dataset_info("imagenet_resized/64x64").image_size == 64
    assert datasets.dataset_info("builtin").num_classes == builtin_shapes.NUM_CLASSES
    with pytest.raises(AttributeError):
        datasets.dataset_info("cifar10").num_classes = 3


def test_preprocess_image_matches_the_original_crop_and_resize_formulation():
    """The original TF-GAN code uses crop_and_resize with boxes normalised by (size - 1)."""
    rng = np.random.default_rng(5)
    for height, width in [(21, 34), (40, 17), (33, 33), (128, 97)]:
        image = rng.integers(0, 256, size=(height, width, 3)).astype(np.float32)
        side = min(height, width)
        top, left = np.ceil(0.5 * (height - side)), np.ceil(0.5 * (width - side))
        box = [top / (height - 1), left / (width - 1),
               (top + side - 1) / (height - 1), (left + side - 1) / (width - 1)]
        for image_size in (16, 128):
            original = tf.image.crop_and_resize(
                image[None], [box], [0], [image_size, image_size]
            )[0] * (2.0 / 255) - 1.0
            np.testing.assert_allclose(
                datasets.preprocess_image(image, image_size), original, atol=2e-5
            )


def test_examples_by_class_are_the_first_examples_of_each_class_in_split_order():
    images = datasets.examples_by_class("builtin", split="validation", image_size=16, classes=[7, 2], per_class=3)
    assert images.shape == (6, 16, 16, 3)
    # The reference: scan the same stream in order, keep the first three of each class.
    stream = builtin_shapes.builtin_shapes_dataset(16, 0, 200, split="validation")
    expected = {7: [], 2: []}
    for image, label in stream:
        if int(label) in expected and len(expected[int(label)]) < 3:
            expected[int(label)].append(image.numpy())
    np.testing.assert_array_equal(images, np.stack(expected[7] + expected[2]))


def test_examples_by_class_names_a_class_with_too_few_examples():
    with pytest.raises(ValueError, match="class 3 has"):
        datasets.examples_by_class("builtin", split="train", image_size=8, classes=[3], per_class=5,
                                   maximum_examples=10)
