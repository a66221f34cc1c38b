"""The autoscaler's public side (Ray's ``ray.autoscaler``): ``sdk.request_resources``."""
