"""netdetect: finds unauthorized cryptocurrency mining on the network, proves it on the host."""

__version__ = "0.1.0"
