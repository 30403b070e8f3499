"""pgrf: posed multi-view datasets from 3D asset libraries, and a patch-wise 3D GAN trained on them."""

__version__ = "0.1.0"
