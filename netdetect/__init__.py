"""netdetect: finds unauthorized cryptocurrency mining from the network side, proves it on the host."""

__version__ = "0.1.0"
