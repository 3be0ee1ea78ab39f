"""Process measurements shared by the benchmarks that start functions as processes of their own."""

from __future__ import annotations

import os
from pathlib import Path


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) used so far by every live process of a process group (a function's tree)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ... utime(11) stime(12)
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")
