"""Built-in plugin 'lengths' (being written)."""
