"""Printer transports, status parsing, confirmation, and the one-socket-per-printer worker."""
