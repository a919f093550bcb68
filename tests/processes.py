"""The service processes tests start, so that each test's are stopped when it ends, passed
or failed: a failed test must not leave a service running that slows the tests after it."""

import subprocess

STARTED: list[subprocess.Popen] = []


def stop_leftovers() -> None:
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait()
