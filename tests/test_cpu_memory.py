"""The CPU allocator settings (Linux/glibc): the engine keeps freed big tensors mapped for reuse unless turned off;
the memory benchmark returns them at once, so that its peaks are of live memory."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

CHILD = """
import sys
import torch
from editgan.engine import cpu_memory
def rss_mb():
    line = next(l for l in open('/proc/self/status') if l.startswith('VmRSS:'))
    return int(line.split()[1]) / 1024
applied = getattr(cpu_memory, sys.argv[1])()
before = rss_mb()
first = torch.ones(5_000_000)  # 20 MB: by default glibc raises its mmap threshold once such a block is freed
del first
blocks = [torch.ones(5_000_000) for _ in range(10)]
del blocks[:9]  # freed below the last block: by default they stay in the heap
print(applied, round(rss_mb() - before - 20))
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator settings")


def run_child(setting: str, keep: str | None = None) -> tuple[bool, int]:
    env = dict(os.environ)
    env.pop("EDITGAN_KEEP_FREED_MEMORY", None)
    if keep is not None:
        env["EDITGAN_KEEP_FREED_MEMORY"] = keep
    out = subprocess.run([sys.executable, "-c", CHILD, setting], env=env, capture_output=True, text=True,
                         check=True)
    applied, kept = out.stdout.split()
    return applied == "True", int(kept)


def test_freed_big_tensors_stay_mapped_unless_turned_off():
    applied, kept_mb = run_child("keep_freed_memory")
    assert applied and kept_mb > 150  # the next step's tensors reuse these pages instead of faulting in new ones
    applied, kept_mb = run_child("keep_freed_memory", keep="0")
    assert not applied


def test_memory_measurements_see_freed_tensors_returned():
    applied, kept_mb = run_child("return_freed_memory")
    assert applied and kept_mb < 30
