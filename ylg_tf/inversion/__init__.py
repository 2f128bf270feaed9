"""Inverting a generator with a loss weighted by the discriminator's attention."""
