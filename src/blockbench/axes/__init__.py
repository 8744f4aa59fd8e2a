"""The experiment axes: one record per precision, block, norm and activation, read by config, models, measure and report."""
