"""Shared helpers without models: normalisation, phonetics, identifiers, ids."""
