"""Built-in plugin 'pii' (being written)."""
