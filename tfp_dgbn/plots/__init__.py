"""Figures: training curves and the backend (`figures`), warm-up laws (`toys`), rings (`rings`)."""
