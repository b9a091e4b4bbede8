"""Rempart: the patient record of a clinic group, built for the day it is attacked."""
