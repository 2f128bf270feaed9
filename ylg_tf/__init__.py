"""ylg-tf: faithful TensorFlow 2 / Keras reproduction of SAGAN and Your Local GAN (YLG)."""

__version__ = "0.1.0"
