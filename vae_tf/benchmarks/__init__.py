"""Throughput, large-image and scaling benchmarks."""
