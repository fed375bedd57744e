"""Built-in plugin 'coherence' (being written)."""
