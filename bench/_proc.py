"""Process measurements shared by the benchmarks that start functions as processes of their own."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GroupCounters:
    """What every live process of a process group (a function's tree) has used so far."""

    cpu_s: float  # user + system
    sys_s: float  # system alone (a page copied after a fork shows here)
    minor_faults: int


def group_counters(pgid: int) -> GroupCounters:
    """One walk of ``/proc``: CPU seconds, system seconds and minor page faults of the group's processes."""
    user = system = faults = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ... minflt(7) ... utime(11) stime(12)
            user += int(fields[11])
            system += int(fields[12])
            faults += int(fields[7])
    tick = os.sysconf("SC_CLK_TCK")
    return GroupCounters((user + system) / tick, system / tick, faults)


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) used so far by every live process of a process group (a function's tree)."""
    return group_counters(pgid).cpu_s
