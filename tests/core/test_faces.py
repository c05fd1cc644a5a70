"""Package faces that load their names on first use (`moorage.faces.lazy_exports`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from moorage.faces import lazy_exports


def run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_a_name_is_imported_on_first_read_and_kept() -> None:
    out = run(
        """
        import sys
        import moorage.records as records
        before = "moorage.format.record" in sys.modules
        first = records.ResultRecord
        kept = "ResultRecord" in vars(records)
        print(before, first.__module__, kept, records.ResultRecord is first)
        """
    )
    assert out == "False moorage.format.record True True"


def test_a_short_module_name_is_below_the_package() -> None:
    out = run(
        """
        import sys
        import moorage_s3
        print("moorage_s3.options" in sys.modules, moorage_s3.S3Options.__module__)
        """
    )
    assert out == "False moorage_s3.options"


def test_an_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    getattr_ = lazy_exports("moorage.records", {"ResultRecord": "moorage.format.record"})
    with pytest.raises(AttributeError, match=r"module 'moorage\.records' has no attribute 'Nope'"):
        getattr_("Nope")
