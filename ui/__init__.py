"""The kiosk's PySide6 user interface, its composition root (app.py) and the `kiosk` CLI."""
