"""Built-in plugin 'relevance' (being written)."""
