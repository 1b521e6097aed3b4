"""Training loops: the autoencoders (notebook 02) and the GAN (notebook 03), all resumable."""
