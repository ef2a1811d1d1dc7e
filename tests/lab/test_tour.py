"""The tour examples, a first user's program (admin, produce, group consume with awaited
commits, pause and resume, every record checked and the group's committed offsets
summed) on tokio, smol and threads, against the real broker. Runs the release builds,
which scripts/test makes before the lab."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "target" / "release" / "examples"


def bootstrap():
    addr = os.environ.get("KASIO_LAB_PLAINTEXT")
    if not addr:
        pytest.fail("KASIO_LAB_PLAINTEXT is not set: start the lab with scripts/kafka up")
    return addr


@pytest.mark.parametrize("name", ["tour", "tour_smol", "tour_blocking"])
def test_the_tour_runs_on_every_runtime(name):
    path = EXAMPLES / name
    assert path.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({path})"
    run = subprocess.run([str(path), "100000"], env={**os.environ, "KASIO_BOOTSTRAP": bootstrap()},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "100000 records produced and read exactly once, all committed" in run.stdout, run.stdout
