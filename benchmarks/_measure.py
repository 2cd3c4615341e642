"""What the benchmark scripts measure the same way (imported as a sibling module: the scripts
run as ``python benchmarks/<name>.py``, which puts this folder on ``sys.path``)."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB.

    ``VmHWM`` belongs to the exec'd image. ``ru_maxrss`` does not: after fork + exec it starts
    at the parent's peak, so a child of a parent that generated a large file reports the
    parent's figure.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
