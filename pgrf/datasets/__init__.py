"""Asset discovery, the sample asset library, synthetic render folders, dataset statistics, and the
shard loader (``pgrf.datasets.loader``: ``train_loader``, ``exact_loader``)."""
