"""The reference government-service platform: the server side of docs/sync-protocol.md.

`store` keeps the data (SQLite and blob files), `app` speaks HTTP (FastAPI), `server` runs it
in a background thread (tests, the demo), `cli` is the `kiosk platform` command.
"""
