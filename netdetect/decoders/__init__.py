"""Stratum semantics on the lines and bodies the core hands up (jsonrpc, stratum), and the
typed events detection judges (events); the wire parsers themselves live in the core."""
