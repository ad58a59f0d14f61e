"""Hall kiosk core: domain, flows, storage and ports. Imports no Qt, hardware or network library."""

__version__ = "0.1.0"
