"""Test session set-up.

Triton's CPU interpreter must be chosen before triton is first imported (triton decorates its own library
functions, tl.sum's combine function among them, at import time), so on a machine without an NVIDIA GPU
the session runs every Triton kernel through the interpreter.
"""

from __future__ import annotations

import os

if not os.path.exists("/dev/nvidiactl"):
    os.environ.setdefault("TRITON_INTERPRET", "1")
