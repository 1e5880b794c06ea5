"""SavedModel export and the signatures it serves."""
