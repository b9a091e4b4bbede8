"""The clinicians' and officers' pages."""
