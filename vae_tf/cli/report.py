"""What several commands print about their results."""


def print_metrics(finished):
    print(f"test metrics of {finished.path} (nats per example):")
    for key, value in finished.metrics.items():
        print(f"  {key:<20} {value:>12.3f}" if isinstance(value, float) else f"  {key:<20} {value:>12}")


def print_export(path, with_anomaly):
    print(f"exported SavedModel to {path}" + (" with an anomaly signature" if with_anomaly else ""))
