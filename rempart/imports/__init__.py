"""Legacy import: CSV exports of the group's previous software, validated, sealed, resumable."""
