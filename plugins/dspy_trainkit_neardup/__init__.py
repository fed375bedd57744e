"""Built-in plugin 'neardup' (being written)."""
