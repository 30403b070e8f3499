"""The patch-wise tri-plane NeRF GAN trainer (docs/training.md)."""
