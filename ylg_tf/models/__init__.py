"""The networks: the generator and the projection discriminator, built from a ModelConfig."""
