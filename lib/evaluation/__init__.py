"""Evaluation: image-quality metrics, identity and emotion measures, the protocol, report figures."""
