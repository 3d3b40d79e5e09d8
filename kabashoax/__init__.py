"""Wiring of the four packages: the `kabashoax` command line and the combined web app."""
