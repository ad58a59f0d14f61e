"""Talking to the central government-service platform: the platform port and its simulator."""
