"""The pack stage (renders → WebDataset shards, index and dataset card, docs/formats.md), shard
verification and export to StyleGAN-family zips."""
