"""Business logic over the patient record: services (writes) and selectors (reads).

This floor sits above the models of directory, patients and care (and, later, the access policy),
so patient selectors can use stays without a loop between folders.
"""
