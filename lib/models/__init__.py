"""Models: the six autoencoders (content encoders), the MoCoGAN-style generator and discriminators."""
