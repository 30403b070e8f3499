"""The trainer's data side: a shards folder opened once, and the loader that streams it into batches."""
