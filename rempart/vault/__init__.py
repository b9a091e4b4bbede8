"""The vault: master key, keysets per data category, field encryption, blind indexes, rotation."""
