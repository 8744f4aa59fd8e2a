"""Measuring: the latency harness and its timer, statistics, energy, attribution, hardware and software facts."""
