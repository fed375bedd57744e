"""The `trainkit` command line. Commands live in their own modules and are imported only when run."""
