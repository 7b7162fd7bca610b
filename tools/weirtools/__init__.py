"""Shared helpers of weir's offline tools (tools/train, tools/golden, tools/bench).

A script puts tools/ on its path and imports from here:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from weirtools import ROOT, registry
"""
import os

# The repository's root (tools/weirtools/ is two levels below it).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
