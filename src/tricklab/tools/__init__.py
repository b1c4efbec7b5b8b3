"""Tools around studies: the linter (more move here as the house plan says)."""
