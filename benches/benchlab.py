"""What the benchmark runners share: building a benchmark binary, the lab's broker (brought
up if it is down) and its addresses, and topics created through librdkafka's admin client."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(binary):
    """Builds `binary` (src/bin/BINARY.rs) in release mode; its path."""
    subprocess.run(["cargo", "build", "--release", "--bin", binary], cwd=ROOT / "benches", check=True)
    return ROOT / "benches" / "target" / "release" / binary


def lab():
    """The lab's `scripts/kafka env` exports as a dict, the broker up."""
    kafka = ROOT / "scripts" / "kafka"
    if "running" not in subprocess.run([kafka, "status"], capture_output=True, text=True).stdout:
        subprocess.run([kafka, "up"], check=True)
    out = subprocess.run([kafka, "env"], capture_output=True, text=True, check=True).stdout
    return dict(line.removeprefix("export ").split("=", 1) for line in out.split("\n")
                if line.startswith("export ") and " " not in line.removeprefix("export "))


def create_topic(env, topic, partitions):
    python = Path(env["KASIO_LAB_VENV"]) / "bin" / "python"
    subprocess.run([python, "-c", (
        "from confluent_kafka.admin import AdminClient, NewTopic\n"
        f"admin = AdminClient({{'bootstrap.servers': '{env['KASIO_LAB_PLAINTEXT']}'}})\n"
        f"admin.create_topics([NewTopic('{topic}', {partitions}, 1)])['{topic}'].result(30)\n")],
        check=True)
