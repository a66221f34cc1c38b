"""The autoscaler: launches worker nodes for resource demand and removes idle ones."""
