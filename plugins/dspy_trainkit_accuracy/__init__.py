"""Built-in plugin 'accuracy' (being written)."""
