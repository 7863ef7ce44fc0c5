"""The CPU allocator setting: freed big tensors stay mapped in the process (Linux/glibc), and it can be turned off."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

CHILD = """
import torch
from editgan.cpu_memory import keep_freed_memory
def rss_mb():
    line = next(l for l in open('/proc/self/status') if l.startswith('VmRSS:'))
    return int(line.split()[1]) / 1024
applied = keep_freed_memory()
before = rss_mb()
big = torch.ones(50_000_000)  # 200 MB, above glibc's mmap threshold
del big
print(applied, round(rss_mb() - before))
"""


def run_child(setting: str | None) -> tuple[bool, int]:
    env = dict(os.environ)
    env.pop("EDITGAN_KEEP_FREED_MEMORY", None)
    if setting is not None:
        env["EDITGAN_KEEP_FREED_MEMORY"] = setting
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    applied, kept = out.stdout.split()
    return applied == "True", int(kept)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator setting")
def test_freed_big_tensors_stay_mapped_unless_turned_off():
    applied, kept_mb = run_child(None)
    assert applied and kept_mb > 150  # the next step's tensors reuse these pages instead of faulting in new ones
    applied, kept_mb = run_child("0")
    assert not applied and kept_mb < 50  # default glibc: returned to the system at once
