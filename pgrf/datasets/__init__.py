"""Asset discovery, the sample asset library, and (later) readers of renders and shards."""
