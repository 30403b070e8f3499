"""The data contracts between stages (docs/formats.md), the only code that reads or writes them:
render output (cameras.json, render log, manifest), shard samples, the dataset card, the asset catalog."""
