"""Patients: INS identity, contact, médecin traitant, IPP per establishment; all encrypted."""
