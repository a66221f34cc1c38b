"""Foundations shared by every process: ids, configuration, resources, time."""
