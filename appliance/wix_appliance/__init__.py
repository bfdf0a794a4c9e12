"""Device lifecycle helpers that are not the order service: the health check and the
performance monitor the systemd timers run, and release switching on a box.

Standard library only: they run from the release venv but must not depend on the
service being importable (a broken release is exactly when they matter).
"""
