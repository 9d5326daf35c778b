import subprocess
import sys

import distillguard.intel as intel


def test_all_names_resolve_and_are_sorted():
    assert intel.__all__ == sorted(set(intel.__all__))
    for name in intel.__all__:
        assert getattr(intel, name) is not None, name


def test_import_loads_no_heavy_dependency():
    code = (
        "import sys, distillguard.intel, distillguard.intel.match, distillguard.intel.findings\n"
        "bad = [m for m in ('stix2', 'fastapi', 'taxii2client', 'jsonschema') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
