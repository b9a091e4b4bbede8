"""The group's directory: establishments (FINESS), services, practitioners (RPPS), staff."""
