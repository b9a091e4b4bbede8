"""Care: stays, prescriptions and their lines, the drug catalogue."""
