"""Evaluation: image metrics, lip-sync proxies, parameter errors."""
