"""Facts about this build and machine, for benchmark records and bug reports."""

from __future__ import annotations

import os
import platform

import numpy as np

from . import _core

__all__ = ["build_info", "cpu_name"]


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where available)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_info() -> dict:
    """Compiler, flags, instruction sets (compiled, available, active), OpenMP, threads, versions.

    Example: ``pyreg.build_info()["isa_active"] == "avx512"`` on an AVX-512 machine.
    """
    from importlib.metadata import PackageNotFoundError, version

    info = dict(_core.build_info())
    info["isa_compiled"] = info["isa_compiled"].split(",")
    try:
        info["pyreg"] = version("pyreg")
    except PackageNotFoundError:
        info["pyreg"] = "unknown"
    info["numpy"] = np.__version__
    info["python"] = platform.python_version()
    info["machine"] = platform.machine()
    info["cpu"] = cpu_name()
    info["cpu_count"] = os.cpu_count()
    return info
