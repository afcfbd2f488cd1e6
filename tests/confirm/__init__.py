"""Tests of host confirmation: protocol, agent daemon, sensor confirmer, config, broker ACL."""
