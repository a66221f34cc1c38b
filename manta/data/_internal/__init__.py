"""Manta Data's machinery; nothing here is public."""
