"""Caisse-AP over IP: a payment terminal simulator and a point-of-sale simulator."""

__version__ = "0.1.0"
