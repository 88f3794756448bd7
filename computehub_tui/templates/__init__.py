"""Built-in launch templates as TOML data files (one per template, listed in file-name order)."""
