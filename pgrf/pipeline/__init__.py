"""The pack stage: renders -> WebDataset shards, index and dataset card (see DESIGN.md §3)."""
