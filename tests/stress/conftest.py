"""The stress suite reuses the integration suite's daemon fixtures
(tests/integration/conftest.py, via stresslib): `start_daemon(...)` starts
the real build/fastformerd (env FASTFORMERD) on a free 127.0.0.1 port and
stops it with SIGTERM at teardown (exit 0 required); `slow_classifier` is a
bigger random-weight classifier whose batches take long enough to observe."""
from stresslib import itc

start_daemon = itc.start_daemon
slow_classifier = itc.slow_classifier
