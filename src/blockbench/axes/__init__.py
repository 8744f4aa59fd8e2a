"""The experiment axes: one record per precision, block, norm and activation (config, models, measure, report)."""
