"""The ``paper`` preset is the reference's Megascans networks at 256² with 64² patches.

Reference numbers: universome/epigraf at commit bda8d47 (configs/model/{base,epigraf}.yaml,
configs/training/base.yaml, src/train.py), its Generator (networks_epigraf.py) and Discriminator
(networks_discriminator.py) instantiated once on CPU with that config (G: cbase 32768 × fmaps 1,
cmax 512, tri-plane 512² × 3 × 32, MLP 32→64→4, map_depth 2; D: cbase 32768 × fmaps 0.5 = 16384,
cmax 512, hyper_mod on, 2 extra start blocks = log2(256/64), mbstd group 4) and their parameters counted.
"""

from __future__ import annotations

import math

import pytest
import torch

from pgrf.model.discriminator import Discriminator
from pgrf.model.generator import Generator
from pgrf.model.presets import preset

PAPER = preset("paper").with_dataset(256, 0)

REFERENCE_G_PARAMETERS = 28_983_507
REFERENCE_D_PARAMETERS = 27_444_480
UNUSED_FROMRGB_PARAMETERS = (128 + 256 + 3 * 512) * (3 + 1)
"""The reference builds a fromRGB layer (3 → tmp channels, with bias) in every D block but uses only the
first block's; pgrf does not build the five unused ones, which never get a gradient."""


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def networks() -> tuple[Generator, Discriminator]:
    torch.manual_seed(0)
    return Generator(PAPER), Discriminator(PAPER)


def test_parameter_counts_equal_the_references(networks: tuple[Generator, Discriminator]) -> None:
    generator, disc = networks
    assert count(generator) == REFERENCE_G_PARAMETERS
    assert count(disc) == REFERENCE_D_PARAMETERS - UNUSED_FROMRGB_PARAMETERS == 27_436_800
    # the reference's parts: scalar_enc 256,256; hyper_mod_mapping and head_mapping 949,760 each;
    # block b256 152,064 (its fromRGB is used); epilogue b4 6,821,888 (conv 513→512, fc 8192→512, out 512→512)
    assert count(disc.patch_encoder) == 256_256
    assert count(disc.hypernetwork) == count(disc.head) == 949_760
    assert count(disc.blocks[0]) + count(disc.hyper_affines[0]) == 152_064
    assert count(disc.conv) + count(disc.fc) + count(disc.out) == 6_821_888
    assert count(generator.mapping) == 525_312 and count(generator.decoder) == 2_372


def test_layer_widths_at_256_with_64_patches(networks: tuple[Generator, Discriminator]) -> None:
    generator, disc = networks
    widths = [(b.conv0.weight.shape[1], b.conv0.weight.shape[0], b.conv1.weight.shape[0], b.conv1.down)
              for b in disc.blocks]
    # channels min(16384 / res, 512) for the reference's block resolutions 256 … 8; the first two keep 64²
    assert widths == [(64, 64, 128, False), (128, 128, 256, False), (256, 256, 512, True),
                      (512, 512, 512, True), (512, 512, 512, True), (512, 512, 512, True)]
    assert disc.blocks[0].fromrgb.weight.shape == (64, 3, 1, 1)
    assert all(b.fromrgb is None for b in disc.blocks[1:])
    assert disc.conv.weight.shape == (512, 513, 3, 3) and disc.fc.weight.shape == (512, 8192)
    assert disc.out.weight.shape == (512, 512) and disc.config.d_conv_clamp == 256.0
    # G: min(32768 / res, 512) channels from 4² to the 512² tri-plane, 3 × 32 plane channels, 16 ws
    synthesis = [(b.conv1.resolution, b.conv1.weight.shape[0], b.torgb.weight.shape[0]) for b in generator.synthesis.blocks]
    assert synthesis == [(4, 512, 96), (8, 512, 96), (16, 512, 96), (32, 512, 96), (64, 512, 96),
                         (128, 256, 96), (256, 128, 96), (512, 64, 96)]
    assert generator.synthesis.num_ws == 16 and all(b.conv1.clamp == 256.0 for b in generator.synthesis.blocks)
    assert [layer.weight.shape for layer in generator.decoder.net] == [(64, 32), (4, 64)]
    assert generator.decoder.rgb == "linear"


def test_hypernetwork_input_and_learning_rates(networks: tuple[Generator, Discriminator]) -> None:
    _, disc = networks
    assert disc.patch_encoder.dim == 828  # 3 × (2 × 10 Fourier features + 256-d bin embedding)
    for mapping in (disc.hypernetwork, disc.head):
        assert mapping.embed.weight.shape == (512, 828) and mapping.embed.weight_gain == 1 / math.sqrt(828)
        assert len(mapping.layers) == 2
        for layer in mapping.layers:  # lr × 0.01 on the mapping layers, not on the input embedding
            assert layer.act == "lrelu" and layer.bias_gain == 0.01
            assert math.isclose(layer.weight_gain, 0.01 / math.sqrt(512))
    assert disc.hypernetwork.embed.bias_gain == 1.0


def test_sigma_modulates_the_input_of_each_blocks_second_conv(networks: tuple[Generator, Discriminator]) -> None:
    _, disc = networks
    assert len(disc.hyper_affines) == len(disc.blocks) == 6
    assert [a.weight.shape for a in disc.hyper_affines] == [(b.conv1.weight.shape[1], 512) for b in disc.blocks]
    assert [a.weight.shape[0] for a in disc.hyper_affines] == [64, 128, 256, 512, 512, 512]
    assert all(torch.equal(a.bias, torch.zeros_like(a.bias)) for a in disc.hyper_affines)  # σ = 1 + tanh(·), bias 0
