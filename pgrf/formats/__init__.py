"""The data contracts between stages (docs/formats.md), the only code that reads or writes them:
render output (cameras.json, render log, filters, manifest), shard samples, the dataset card, the asset catalog,
and a training run's files (checkpoint metadata, stats.jsonl, FID records)."""
