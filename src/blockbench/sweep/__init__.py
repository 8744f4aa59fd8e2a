"""A sweep: the Hydra task and callback, the sweep folder and its parent run, prebuild, the summaries."""
