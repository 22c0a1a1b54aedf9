"""Package facts: version, build info for benchmark records, module layout."""

from __future__ import annotations

import re

import pyreg


def test_version_is_the_package_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", pyreg.__version__)
    from importlib.metadata import version

    assert pyreg.__version__ == version("pyreg")


def test_build_info_reports_compiler_flags_simd_and_threads():
    info = pyreg.build_info()
    assert info["compiler"].startswith(("GNU", "Clang", "AppleClang"))
    assert "-O" in info["cxx_flags"]
    assert "-ffast-math" not in info["cxx_flags"]
    assert info["build_type"] == "Release"
    assert "generic" in info["isa_compiled"]
    assert info["isa_active"] in info["isa_available"]
    assert set(info["isa_available"]) <= set(info["isa_compiled"])
    assert isinstance(info["openmp"], bool)
    assert info["max_threads"] >= 1
    assert info["numpy"]
    assert info["python"]
    assert info["cpu"]


def test_compiled_module_lives_inside_the_package():
    assert pyreg._core.__name__ == "pyreg._core"
