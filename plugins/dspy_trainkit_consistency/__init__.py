"""Built-in plugin 'consistency' (being written)."""
