"""Files: the formats plugins register, reading files into records, mapping record fields onto examples, and
writing examples out."""
