"""ShiftRL trainers: the only package that imports ray (rollout actors, Tune runs, the CLI)."""
