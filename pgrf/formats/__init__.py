"""The data contracts between stages (DESIGN.md §2–3), the only code that reads or writes them:
render output (cameras.json, render log, manifest), shard samples, the dataset card, the asset catalog,
and a training run's files (checkpoint metadata, stats.jsonl, FID records; docs/formats-train.md)."""
