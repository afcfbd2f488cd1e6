"""Sans-IO protocol decoders: feed bytes, get events; only DecodeError escapes."""
