"""The patch-wise tri-plane NeRF GAN trainer (see TRAINER.md)."""
