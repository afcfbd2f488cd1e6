"""Live-capture tests: AF_PACKET rings, fanout and the network-namespace lab (root only)."""
