"""``pgrf review``: a static HTML gallery of a renders or shards folder, with exclude toggles."""
