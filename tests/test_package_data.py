"""What an installed (not editable) package needs besides code is in the wheel: each
service's migrations, the Envoy fragments, the topology. An image built from the wheel
would otherwise start a service that cannot create its tables."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Data files the code opens at run time, by the folders they live in.
DATA = ("services/*/migrations/*.sql", "services/payment/gateway_migrations/*.sql",
        "shopmesh/envoy/fragments/**/*.yaml", "shopmesh/envoy/fragments/**/*.lua",
        "shopmesh/topology.yaml")  # fmt: skip


def _tracked_copy(target: pathlib.Path) -> pathlib.Path:
    """The checkout's tracked files (as they are now) in a folder of their own: a build
    in the checkout itself would reuse the editable install's file list (egg-info)."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, timeout=60
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source, copy = ROOT / name, target / name
        if source.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)
    return target


@pytest.mark.timeout(300)
def test_the_wheel_carries_every_data_file_the_code_reads(tmp_path):
    source = _tracked_copy(tmp_path / "source")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(tmp_path / "wheel"), str(source)],
        check=True, timeout=240,
    )  # fmt: skip
    (wheel,) = (tmp_path / "wheel").glob("shopmesh-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    expected = {str(p.relative_to(ROOT)) for pattern in DATA for p in ROOT.glob(pattern)}
    assert expected, "no data files found: the patterns are wrong"
    assert sorted(expected - packed) == []
