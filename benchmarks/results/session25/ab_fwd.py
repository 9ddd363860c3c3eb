"""Session 25: A/B of the Hopper forward, 9309b75's kernel (snake over heaviest-first items) against
the tree's (work lists in locality order), with session 18's harness. The baseline's schedule
module is a copy too (``.ab/sched_head.py``, main's ``sm90_schedule.py`` before the change),
registered before the baseline kernel that imports it.
Usage: python benchmarks/results/session25/ab_fwd.py .ab/fwd_head.py tree"""
import os
import runpy
import sys

sys.path.insert(0, os.getcwd())
from benchmarks.ab import load_kernel_variant  # noqa: E402

load_kernel_variant(".ab/sched_head.py", "sched_head")
runpy.run_path("benchmarks/results/session18/ab_fwd.py", run_name="__main__")
