"""Recommendations: per-customer lists, related products, offer targets, evaluation."""
