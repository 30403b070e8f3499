"""Evaluation: FID/KID with the standard FID Inception network, and mesh extraction."""
