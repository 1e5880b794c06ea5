"""Fault injection the tests use to kill a process at named points."""
