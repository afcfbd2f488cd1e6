"""Live capture set-up: the AF_PACKET socket, fanout group and BPF program whose TPACKET_V3
ring the compiled core reads (capture files are read by the core itself)."""
