"""The run config: the typed schema (registered with Hydra), its field rules, checks before any work, argv checks."""
