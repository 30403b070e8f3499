"""The networks and what a checkpoint needs to render: G (mapping, synthesis, tri-planes, volume rendering,
rays, patches, poses), D, presets, and loading a G from a checkpoint.

The ``paper`` preset has the reference's networks (universome/epigraf, Megascans config): the same layer
widths, parameter counts, D patch encoding and hypernetwork, resampling operators, conv clamps and
linear colour. Differences from the reference, each deliberate:

- Rays come from the dataset's camera model (fov, OpenCV c2w) and start and end where each ray enters
  and leaves the scene box [-1, 1]³ (the reference: a fixed near/far for all rays); same 48 + 48 samples.
- Pixel centres at (i + ½)/r of the patch, for G's rays and real patches alike (``grid_sample`` with
  ``align_corners=False``); the reference's linspace(-1, 1, r) puts the first and last pixels on the
  patch border. Tri-planes tile [-1, 1]³ exactly (``align_corners=False``); the reference centres its
  corner texels on the cube's faces (a 1/R_p difference in scale).
- Minibatch-stddev groups are consecutive samples, which share a patch; the reference groups strided
  samples, mixing patches.
- D does not build the reference's unused fromRGB layers of blocks after the first (7,680 parameters).
- Camera-conditioned D (off in ``paper``): [yaw, pitch, sin/cos of k·angle, k ≤ 4] with dropout 0.5,
  concatenated into the projection head's input as the reference does with its own encoding.
- In eval, importance samples use fixed quantiles (the reference draws them at random); the last
  sample interval ends at the box exit (the reference: 10¹⁰); density noise is drawn once per sample.
- Up-convolutions correlate where the reference's convolve (flipped kernels: the same function class).
"""
