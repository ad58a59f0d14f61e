"""ESC/POS thermal printers: rendering, connections, status, a network simulator, diagnostics.

docs/printing.md describes the bytes, the URL forms and what happens when a printer is in trouble.
"""
