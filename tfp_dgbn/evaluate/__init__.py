"""Evaluation: metric functions (`metrics`), against known laws (`toys`, `rings`), the report (`report`)."""
