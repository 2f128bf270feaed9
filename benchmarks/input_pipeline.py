"""Benchmark of what feeds and what scores a run: the training input pipeline's images/s and the
evaluation loop's images/s, per CPU core, and how many host cores would keep a TPU v3-8 busy.

Input pipeline: `ylg_tf.data.datasets.make_dataset`, exactly as training reads (shuffle, repeat, decode,
the largest central square, bilinear resize to --image_size, batches of --batch), on --num_images JPEGs shaped
like ImageNet's (--width x --height, smooth colour fields with noise; made by this script), read two ways:
  folder: the JPEG files in class sub-folders (`--dataset=folder`);
  tfds:   the same JPEGs prepared by TensorFlow Datasets' own `imagenet2012` builder into TFRecords (from
          ILSVRC2012_img_train.tar-style archives this script writes), read as `--dataset=imagenet2012`.
Each is timed under three tf.data settings: "autotune" (as training runs: parallel maps with AUTOTUNE,
every core), "no autotune" (tf.data's autotuning switched off) and "1 thread" (a private thread pool of
one thread: one core's rate). Images/s per core = images / process CPU seconds, the rate one core sustains
whatever the parallelism.

Evaluation: the loop of `tools/evaluate.py` (`ylg_tf.evaluation.samples.classified_batches`): the --preset's
generator (random weights; the cost does not depend on them) draws --eval_samples images in batches of
--eval_batch, and an Inception-v3 network of the TF-Hub module's shape (Keras' InceptionV3 architecture,
1008 logits and the 2048-wide pool_3, random weights, loaded through `ylg_tf.evaluation.inception` as a
SavedModel; the real module cannot be downloaded here; --classifier names another) classifies them at
299x299. Reported: the loop's images/s, and the generator's and the classifier's alone.

Cores for a v3-8: the step rate the paper's run implies is an assumption (printed with the table):
--step_tflop (the 128x128 `ylg` step at batch 256, gf = df = 64, counted by benchmarks/train_step.py: 1190.94
GFLOP at batch 8, times 32) over the v3-8's bfloat16 peak (4 chips x 123 TFLOP/s, Cloud TPU's v3 page) times
--tpu_utilisation. The host must then decode batch x steps/s images per second; cores = that / the
pipeline's images/s per core.

Usage:
  python benchmarks/input_pipeline.py [--output=input_pipeline.json] [--num_images=256] [--batch=64]
      [--image_size=128] [--eval_samples=100] [--classifier=DIR] [--skip_evaluation]
"""

import json
import os
import pathlib
import shutil
import tarfile
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # this script's own output is the table

from absl import app, flags  # noqa: E402

import common  # noqa: E402  (beside this script)

SETTINGS = ("autotune", "no autotune", "1 thread")
SOURCES = ("folder", "tfds")
NUM_CLASSES = 8
TPU_V3_8_PEAK_TFLOPS = 4 * 123.0  # bfloat16, Cloud TPU's v3 documentation

flags.DEFINE_string("output", None, "Write the results as JSON to this file.")
flags.DEFINE_integer("num_images", 256, "JPEGs to make (split over NUM_CLASSES classes).")
flags.DEFINE_integer("width", 500, "JPEG width (ImageNet's most common: 500x375).")
flags.DEFINE_integer("height", 375, "JPEG height.")
flags.DEFINE_integer("image_size", 128, "Training image side.")
flags.DEFINE_integer("batch", 64, "Batch size of the pipeline.")
flags.DEFINE_integer("batches", 12, "Timed batches per case (after 2 warm-up batches).")
flags.DEFINE_string("preset", "ylg", "Preset whose generator the evaluation loop draws from.")
flags.DEFINE_integer("eval_samples", 100, "Samples the timed evaluation loop draws and classifies.")
flags.DEFINE_integer("eval_batch", 50, "Batch of the evaluation loop (tools/evaluate.py --batch_size).")
flags.DEFINE_bool("skip_evaluation", False, "Time the input pipeline only.")
flags.DEFINE_string("classifier", "", "The evaluation's classifier: a TF-Hub Inception module (directory or URL); "
                    "default: an Inception-v3-shaped SavedModel with random weights, made here.")
flags.DEFINE_float("step_tflop", 1190.94 * 32 / 1000, "FLOPs of one 128x128 training step at batch 256, TFLOP.")
flags.DEFINE_float("tpu_utilisation", 0.4, "Assumed share of the v3-8's peak the step reaches.")
flags.DEFINE_integer("tpu_batch", 256, "The paper's global batch on the v3-8.")
flags.DEFINE_string("root", None, "Where the images go (default: a new temporary directory, removed after).")
FLAGS = flags.FLAGS


def make_jpegs(count, width, height):
    """`count` JPEG byte strings of smooth random colour fields with noise (ImageNet-like file sizes)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    pictures = []
    for _ in range(count):
        coarse = tf.constant(rng.uniform(0, 255, size=(1, 6, 8, 3)).astype(np.float32))
        field = tf.image.resize(coarse, [height, width], method="bicubic")[0].numpy()
        field += rng.normal(0, 12, size=field.shape)
        pictures.append(tf.io.encode_jpeg(np.clip(field, 0, 255).astype(np.uint8), quality=90).numpy())
    return pictures


def write_folder(root, jpegs, class_names):
    """The JPEGs as ROOT/folder/CLASS/NAME.JPEG (the `folder` dataset)."""
    folder = root / "folder"
    for index, picture in enumerate(jpegs):
        path = folder / class_names[index % len(class_names)] / f"image_{index:05d}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(picture)
    return folder


def prepare_tfds_imagenet(root, jpegs, class_names):
    """TFDS's imagenet2012 builder prepares the JPEGs into TFRecords under ROOT/tfds from an
    ILSVRC2012_img_train.tar of per-synset archives (and a small ILSVRC2012_img_val.tar), as the real data is
    laid out. Returns the data dir."""
    import io

    import tensorflow_datasets as tfds

    manual = root / "manual"
    manual.mkdir(parents=True, exist_ok=True)
    with tarfile.open(manual / "ILSVRC2012_img_train.tar", "w") as outer:
        for label, synset in enumerate(class_names):
            inner_bytes = io.BytesIO()
            with tarfile.open(fileobj=inner_bytes, mode="w") as inner:
                for index in range(label, len(jpegs), len(class_names)):
                    info = tarfile.TarInfo(f"{synset}_{index}.JPEG")
                    info.size = len(jpegs[index])
                    inner.addfile(info, io.BytesIO(jpegs[index]))
            info = tarfile.TarInfo(f"{synset}.tar")
            info.size = inner_bytes.tell()
            inner_bytes.seek(0)
            outer.addfile(info, inner_bytes)
    # The builder also wants a validation archive (flat; its labels come from TFDS's own list).
    with tarfile.open(manual / "ILSVRC2012_img_val.tar", "w") as validation:
        for index in range(min(len(jpegs), len(class_names))):
            info = tarfile.TarInfo(f"ILSVRC2012_val_{index + 1:08d}.JPEG")
            info.size = len(jpegs[index])
            validation.addfile(info, io.BytesIO(jpegs[index]))
    data_dir = root / "tfds"
    builder = tfds.builder("imagenet2012", data_dir=str(data_dir))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    return data_dir


def with_setting(dataset, setting):
    import tensorflow as tf

    options = tf.data.Options()
    if setting == "no autotune":
        options.autotune.enabled = False
    elif setting == "1 thread":
        options.threading.private_threadpool_size = 1
        options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options)


def time_pipeline(name, data_dir, setting):
    """Images/s (wall) and images per CPU second of the training pipeline under one tf.data setting."""
    from ylg_tf.data import datasets

    dataset = datasets.make_dataset(
        name, split="train", image_size=FLAGS.image_size, batch_size=FLAGS.batch, data_dir=str(data_dir), seed=0)
    iterator = iter(with_setting(dataset, setting))
    for _ in range(2):
        next(iterator)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(FLAGS.batches):
        images, _ = next(iterator)
    images.numpy()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    count = FLAGS.batches * FLAGS.batch
    return dict(images_per_second=count / wall, images_per_cpu_second=count / cpu, wall_seconds=wall,
                cpu_seconds=cpu, images=count)


def save_inception_shaped_classifier(directory):
    """A SavedModel called as the TF-Hub Inception module is ({"logits": [N, 1008], "pool_3": [N, 1, 1, 2048]}
    from images in [-1, 1]), with Keras' InceptionV3 architecture and random weights."""
    import tensorflow as tf
    import tf_keras

    base = tf_keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(299, 299, 3))
    head = tf_keras.layers.Dense(1008)

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.base, self.head = base, head
            self.head.build([None, 2048])

        @tf.function(input_signature=[tf.TensorSpec([None, 299, 299, 3], tf.float32)])
        def __call__(self, images):
            pool = tf.reduce_mean(self.base(images, training=False), axis=[1, 2])
            return {"logits": self.head(pool), "pool_3": pool[:, None, None, :]}

    tf.saved_model.save(Module(), str(directory))


def time_evaluation(root):
    """Images/s of tools/evaluate.py's loop (generate, then classify), and of each part alone."""
    import numpy as np

    from ylg_tf.config import get_preset
    from ylg_tf.evaluation import inception, samples
    from ylg_tf.models.networks import Generator

    config = get_preset(FLAGS.preset)
    generator = Generator(config.model).build_for_config()
    sample = samples.generator_sample_function(generator)
    source = FLAGS.classifier
    if not source:
        source = str(root / "inception")
        save_inception_shaped_classifier(source)
    classifier = inception.load_classifier(source)
    model = config.model

    def loop(count):
        for _ in samples.classified_batches(sample, classifier, count, FLAGS.eval_batch, model.num_classes,
                                            model.z_dim):
            pass

    loop(FLAGS.eval_batch)  # trace and warm up
    results = {}
    start = time.perf_counter()
    loop(FLAGS.eval_samples)
    results["loop_images_per_second"] = FLAGS.eval_samples / (time.perf_counter() - start)
    z, labels = samples.sample_latents(0, FLAGS.eval_batch, model.num_classes, model.z_dim, 0)
    images = sample(z, labels)
    repeats = max(1, FLAGS.eval_samples // FLAGS.eval_batch)
    start = time.perf_counter()
    for _ in range(repeats):
        images = sample(z, labels)
    np.asarray(images)
    results["generator_images_per_second"] = repeats * FLAGS.eval_batch / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(repeats):
        outputs = classifier(images)
    np.asarray(outputs["logits"])
    results["classifier_images_per_second"] = repeats * FLAGS.eval_batch / (time.perf_counter() - start)
    results.update(preset=FLAGS.preset, image_size=model.image_size, samples=FLAGS.eval_samples,
                   batch=FLAGS.eval_batch, classifier=FLAGS.classifier or "Inception-v3-shaped, random weights")
    return results


def tpu_estimate(per_core_rate):
    steps_per_second = TPU_V3_8_PEAK_TFLOPS * FLAGS.tpu_utilisation / FLAGS.step_tflop
    images_per_second = FLAGS.tpu_batch * steps_per_second
    return dict(
        assumed_step_tflop=FLAGS.step_tflop, assumed_utilisation=FLAGS.tpu_utilisation,
        tpu_peak_tflops=TPU_V3_8_PEAK_TFLOPS, steps_per_second=steps_per_second,
        million_steps_hours=1e6 / steps_per_second / 3600, images_per_second_needed=images_per_second,
        pipeline_images_per_cpu_second=per_core_rate, host_cores_needed=images_per_second / per_core_rate)


def main(argv):
    del argv
    import tensorflow_datasets as tfds

    root = pathlib.Path(FLAGS.root or tempfile.mkdtemp(prefix="input_pipeline_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        print(f"making {FLAGS.num_images} JPEGs of {FLAGS.width}x{FLAGS.height} in {root}", flush=True)
        jpegs = make_jpegs(FLAGS.num_images, FLAGS.width, FLAGS.height)
        synsets = tfds.builder("imagenet2012", data_dir=str(root / "tfds")).info.features["label"].names
        class_names = list(synsets[:NUM_CLASSES])
        sources = {"folder": ("folder", write_folder(root, jpegs, class_names))}
        print("preparing the TFRecords with TFDS's imagenet2012 builder", flush=True)
        sources["tfds"] = ("imagenet2012", prepare_tfds_imagenet(root, jpegs, class_names))
        rows = []
        for source, (name, data_dir) in sources.items():
            for setting in SETTINGS:
                row = dict(source=source, setting=setting, **time_pipeline(name, data_dir, setting))
                rows.append(row)
                print(f"  {source:6s}  {setting:12s}  {row['images_per_second']:8.1f} images/s  "
                      f"{row['images_per_cpu_second']:8.1f} images per CPU second", flush=True)
        per_core = min(row["images_per_cpu_second"] for row in rows if row["setting"] == "1 thread")
        report = dict(
            settings=dict(num_images=FLAGS.num_images, width=FLAGS.width, height=FLAGS.height,
                          image_size=FLAGS.image_size, batch=FLAGS.batch, batches=FLAGS.batches),
            mean_jpeg_bytes=sum(map(len, jpegs)) / len(jpegs),
            input_pipeline=rows,
            tpu_v3_8=tpu_estimate(per_core),
            machine=common.machine_description(),
        )
        if not FLAGS.skip_evaluation:
            print("timing the evaluation loop", flush=True)
            report["evaluation"] = time_evaluation(root)
    finally:
        if FLAGS.root is None:
            shutil.rmtree(root, ignore_errors=True)
    print_report(report)
    if FLAGS.output:
        pathlib.Path(FLAGS.output).write_text(json.dumps(report, indent=2) + "\n")


def print_report(report):
    settings = report["settings"]
    print(f"\ninput pipeline: {settings['num_images']} JPEGs of {settings['width']}x{settings['height']} "
          f"(mean {report['mean_jpeg_bytes'] / 1000:.0f} kB) -> {settings['image_size']}x{settings['image_size']}, "
          f"batch {settings['batch']}, {report['machine']['cpu_count']} cores")
    print(f"{'source':8s}{'tf.data':14s}{'images/s':>10s}{'per CPU s':>11s}")
    for row in report["input_pipeline"]:
        print(f"{row['source']:8s}{row['setting']:14s}{row['images_per_second']:10.1f}"
              f"{row['images_per_cpu_second']:11.1f}")
    if "evaluation" in report:
        evaluation = report["evaluation"]
        print(f"\nevaluation loop ({evaluation['preset']} generator at {evaluation['image_size']}x"
              f"{evaluation['image_size']}, classifier {evaluation['classifier']} at 299x299, "
              f"batch {evaluation['batch']}):")
        print(f"  loop {evaluation['loop_images_per_second']:.1f} images/s; generator alone "
              f"{evaluation['generator_images_per_second']:.1f}, classifier alone "
              f"{evaluation['classifier_images_per_second']:.1f}")
        hours = 50_000 / evaluation["loop_images_per_second"] / 3600
        print(f"  50,000 samples (the paper's FID) would take {hours:.1f} h on this machine")
    estimate = report["tpu_v3_8"]
    print(f"\nTPU v3-8 (assumed: step {estimate['assumed_step_tflop']:.1f} TFLOP at batch {FLAGS.tpu_batch}, "
          f"{estimate['assumed_utilisation']:.0%} of {estimate['tpu_peak_tflops']:.0f} TFLOP/s): "
          f"{estimate['steps_per_second']:.2f} steps/s (1M steps in {estimate['million_steps_hours']:.0f} h), "
          f"{estimate['images_per_second_needed']:.0f} images/s to decode; at "
          f"{estimate['pipeline_images_per_cpu_second']:.0f} images per CPU second: "
          f"{estimate['host_cores_needed']:.1f} host cores")


if __name__ == "__main__":
    app.run(main)
