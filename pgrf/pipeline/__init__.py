"""The pack stage (renders → WebDataset shards, index and dataset card, DESIGN.md §3), shard
verification and export to StyleGAN-family zips."""
