"""Evaluation and inference: FID/KID with the standard FID Inception network, sample grids,
turntable videos and meshes of a trained generator."""
