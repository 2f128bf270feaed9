"""A procedurally generated, class-conditional dataset of coloured 2-D shapes.

It needs no download and is the default dataset of small local runs: a GAN can learn it in a
few hundred CPU steps at 32x32, yet it is not trivial, because the class is carried jointly by
shape and colour (each of the 5 colours appears in two classes with different shapes, and each
of the 5 shapes appears in two classes with different colours). Every example has a random
position, size and rotation, a little colour jitter, and a grey background with a random linear
gradient.

Examples are rendered with TensorFlow ops from signed distance functions, with one pixel of
anti-aliasing, so any image size works. All randomness is stateless and keyed by
(seed, split, example index): a dataset is fully deterministic for a given seed, example `i` is
the same whatever the sharding, and the "train" and "validation" streams never share a key.
"""

import math

import tensorflow as tf

SHAPE_NAMES = ("disc", "square", "triangle", "ring", "cross")
COLOUR_NAMES = ("red", "green", "blue", "yellow", "magenta")
# RGB in [0, 1]; saturated, so the shape stands out from the grey background.
COLOUR_VALUES = (
    (0.90, 0.15, 0.15),
    (0.15, 0.75, 0.20),
    (0.20, 0.35, 0.95),
    (0.95, 0.85, 0.15),
    (0.80, 0.20, 0.85),
)
# Class k < 5 is shape k in colour k; class k >= 5 is shape k - 5 in colour (k - 3) mod 5.
CLASS_SHAPES = (0, 1, 2, 3, 4, 0, 1, 2, 3, 4)
CLASS_COLOURS = (0, 1, 2, 3, 4, 2, 3, 4, 0, 1)
NUM_CLASSES = len(CLASS_SHAPES)
CLASS_NAMES = tuple(
    f"{COLOUR_NAMES[colour]}_{SHAPE_NAMES[shape]}"
    for shape, colour in zip(CLASS_SHAPES, CLASS_COLOURS)
)
SPLITS = ("train", "validation")

MINIMUM_IMAGE_SIZE = 8
MAXIMUM_IMAGE_SIZE = 1024

# Geometry in normalised image coordinates: the image spans [-1, 1] on both axes.
_MINIMUM_SIZE = 0.35  # half-extent of a shape
_MAXIMUM_SIZE = 0.6
_BORDER = 0.05  # shapes keep at least this distance from the image edge
_MAXIMUM_ROTATION = math.pi / 8
_COLOUR_JITTER = 0.08
_MINIMUM_BACKGROUND = 0.15
_MAXIMUM_BACKGROUND = 0.45
_MAXIMUM_GRADIENT = 0.15


def _validate(image_size, seed, num_examples, split, num_shards, shard_index):
    if not isinstance(image_size, int) or not (
        MINIMUM_IMAGE_SIZE <= image_size <= MAXIMUM_IMAGE_SIZE
    ):
        raise ValueError(
            f"image_size must be an integer in [{MINIMUM_IMAGE_SIZE}, {MAXIMUM_IMAGE_SIZE}], "
            f"got {image_size!r}"
        )
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if num_examples is not None and (not isinstance(num_examples, int) or num_examples < 1):
        raise ValueError(f"num_examples must be None or a positive integer, got {num_examples!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not isinstance(num_shards, int) or num_shards < 1:
        raise ValueError(f"num_shards must be a positive integer, got {num_shards!r}")
    if not isinstance(shard_index, int) or not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, {num_shards}), got {shard_index!r}")


def _box_distance(x, y, half_width, half_height):
    """Signed distance (inside negative, exact enough near the edge) to an axis-aligned box."""
    return tf.maximum(tf.abs(x) - half_width, tf.abs(y) - half_height)


def _shape_distances(x, y, size):
    """Signed distances to all shapes, centred at the origin, of half-extent `size`.

    x, y: [H, W] coordinates in the shape's frame (y pointing down). Returns [5, H, W].
    """
    radius = tf.sqrt(x * x + y * y)
    disc = radius - size
    square = _box_distance(x, y, 0.8 * size, 0.8 * size)
    # Equilateral triangle, one vertex up: intersection of three half-planes whose outward
    # normals point at 90, 210 and 330 degrees (y down); inradius = circumradius / 2.
    triangle_circumradius = 1.1 * size
    half_planes = [
        x * math.cos(angle) + y * math.sin(angle)
        for angle in (math.pi / 2, 7 * math.pi / 6, 11 * math.pi / 6)
    ]
    triangle = tf.reduce_max(tf.stack(half_planes), axis=0) - 0.5 * triangle_circumradius
    ring = tf.abs(radius - 0.775 * size) - 0.225 * size
    arm_length, arm_width = 0.95 * size, 0.32 * size
    cross = tf.minimum(
        _box_distance(x, y, arm_length, arm_width), _box_distance(x, y, arm_width, arm_length)
    )
    return tf.stack([disc, square, triangle, ring, cross])


def render_example(key, image_size):
    """Renders one example from a stateless seed `key` ([2] int).

    Returns (image float32 [image_size, image_size, 3] in [-1, 1], label int32 scalar).
    """
    label_key, geometry_key = tf.unstack(tf.random.experimental.stateless_split(key, num=2))
    label = tf.random.stateless_uniform(
        [], seed=label_key, minval=0, maxval=NUM_CLASSES, dtype=tf.int32
    )
    # One draw for every continuous parameter: size, centre x/y, rotation, colour jitter x3,
    # background level, gradient amplitude, gradient angle.
    uniform = tf.random.stateless_uniform([10], seed=geometry_key)
    size = _MINIMUM_SIZE + (_MAXIMUM_SIZE - _MINIMUM_SIZE) * uniform[0]
    # The rotated shapes reach at most about 1.13 * size from their centre.
    centre_range = tf.maximum(1.0 - _BORDER - 1.13 * size, 0.0)
    centre_x = centre_range * (2.0 * uniform[1] - 1.0)
    centre_y = centre_range * (2.0 * uniform[2] - 1.0)
    rotation = _MAXIMUM_ROTATION * (2.0 * uniform[3] - 1.0)
    colour_jitter = _COLOUR_JITTER * (2.0 * uniform[4:7] - 1.0)
    background_range = _MAXIMUM_BACKGROUND - _MINIMUM_BACKGROUND
    background_level = _MINIMUM_BACKGROUND + background_range * uniform[7]
    gradient_amplitude = _MAXIMUM_GRADIENT * (2.0 * uniform[8] - 1.0)
    gradient_angle = 2.0 * math.pi * uniform[9]

    # Pixel centres in normalised coordinates, row index = y (pointing down).
    pixel_size = 2.0 / image_size
    coordinates = (tf.range(image_size, dtype=tf.float32) + 0.5) * pixel_size - 1.0
    y, x = tf.meshgrid(coordinates, coordinates, indexing="ij")  # [H, W] each
    shifted_x, shifted_y = x - centre_x, y - centre_y
    cos_rotation, sin_rotation = tf.cos(rotation), tf.sin(rotation)
    frame_x = cos_rotation * shifted_x + sin_rotation * shifted_y
    frame_y = -sin_rotation * shifted_x + cos_rotation * shifted_y

    shape_index = tf.gather(CLASS_SHAPES, label)
    distance = tf.gather(_shape_distances(frame_x, frame_y, size), shape_index)  # [H, W]
    coverage = tf.clip_by_value(0.5 - distance / pixel_size, 0.0, 1.0)[..., None]  # [H, W, 1]

    colour = tf.gather(tf.constant(COLOUR_VALUES, tf.float32), tf.gather(CLASS_COLOURS, label))
    colour = tf.clip_by_value(colour + colour_jitter, 0.0, 1.0)  # [3]
    # The gradient runs along a random direction; |projection| <= sqrt(2) inside the image.
    projection = (x * tf.cos(gradient_angle) + y * tf.sin(gradient_angle)) / math.sqrt(2.0)
    background = (background_level + gradient_amplitude * projection)[..., None]  # [H, W, 1]

    image = coverage * colour + (1.0 - coverage) * background  # [H, W, 3] in [0, 1]
    image = tf.ensure_shape(image * 2.0 - 1.0, [image_size, image_size, 3])
    return image, label


def builtin_shapes_dataset(
    image_size,
    seed,
    num_examples=None,
    *,
    split="train",
    num_shards=1,
    shard_index=0,
):
    """The shapes dataset as an unbatched `tf.data.Dataset` of (image, label).

    Args:
      image_size: side of the square images, in pixels.
      seed: non-negative integer; the same seed gives the same examples.
      num_examples: None for an infinite stream, else the number of examples.
      split: "train" or "validation"; the two are independent streams for the same seed.
      num_shards, shard_index: keep only examples whose index is shard_index mod num_shards
        (disjoint shards for input pipelines; each example is rendered by one shard only).

    Yields images float32 [image_size, image_size, 3] in [-1, 1] and labels int32 [].
    """
    _validate(image_size, seed, num_examples, split, num_shards, shard_index)
    base_key = tf.constant([seed, SPLITS.index(split)], dtype=tf.int64)
    if num_examples is None:
        indices = tf.data.Dataset.counter(start=shard_index, step=num_shards, dtype=tf.int64)
    else:
        indices = tf.data.Dataset.range(shard_index, num_examples, num_shards)

    def render(index):
        key = tf.random.experimental.stateless_fold_in(base_key, index)
        return render_example(key, image_size)

    return indices.map(render, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
