"""Helpers that test modules import (fixtures stay in the conftest files)."""
