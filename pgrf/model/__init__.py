"""The networks and what a checkpoint needs to render: G (mapping, synthesis, tri-planes, volume rendering,
rays, patches, poses), D, presets, and loading a G from a checkpoint."""
