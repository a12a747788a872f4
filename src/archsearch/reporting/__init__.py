"""Reports: plots of a search."""
