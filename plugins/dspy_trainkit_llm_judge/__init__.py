"""Built-in plugin 'llm_judge' (being written)."""
