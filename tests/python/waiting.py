"""Waiting in the Python tests: every wait retries its condition until a generous deadline."""

import time

# How long a test waits for something that becomes true asynchronously, unless it says
# otherwise: generous, for a loaded 2-core CI machine.
WAIT = 60


def wait_for(condition, timeout=WAIT, what="the condition"):
    """Calls condition() every 0.1 s until it returns something truthy, and returns that;
    fails naming `what` (a string, or a function giving one, e.g. with the last state
    seen) once `timeout` seconds have passed."""
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.time() >= deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {described}")
        time.sleep(0.1)
