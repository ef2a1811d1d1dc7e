"""What the benchmark runners share: building a benchmark binary, the lab's broker (brought
up if it is down) and its addresses, and topics created through librdkafka's admin client."""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_tools():
    """rdkafka's bundled librdkafka builds with cmake against libcurl's headers: installs
    Debian's libcurl4-openssl-dev when they are missing."""
    if Path("/usr/include/x86_64-linux-gnu/curl/curl.h").exists() or Path("/usr/include/curl/curl.h").exists():
        return
    sudo = [] if os.geteuid() == 0 or shutil.which("sudo") is None else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(sudo + ["apt-get", "update", "-qq"], stdout=subprocess.DEVNULL, check=True)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "libcurl4-openssl-dev"],
                   stdout=subprocess.DEVNULL, env=env, check=True)


def build(binary):
    """Builds `binary` (src/bin/BINARY.rs) in release mode; its path."""
    build_tools()
    subprocess.run(["cargo", "build", "--release", "--bin", binary], cwd=ROOT / "benches", check=True)
    return ROOT / "benches" / "target" / "release" / binary


BASELINE = "@baseline"


def binary_for(client, built, name):
    """The binary that runs `client`, and the client name to give it: a client ending in
    `@baseline` runs the same client from BENCH_BASELINE, a directory holding another
    build's binaries (an older commit's, say), so old and new run side by side in one run."""
    if not client.endswith(BASELINE):
        return built, client
    base = os.environ.get("BENCH_BASELINE")
    if not base:
        raise SystemExit(f"{client}: set BENCH_BASELINE to a directory holding a `{name}` binary")
    return Path(base) / name, client.removesuffix(BASELINE)


def lab():
    """The lab's `scripts/kafka env` exports as a dict, the broker up."""
    kafka = ROOT / "scripts" / "kafka"
    status = subprocess.run([kafka, "status"], capture_output=True, text=True).stdout
    # "nothing running" when it is down.
    if "running" not in status or "nothing running" in status:
        subprocess.run([kafka, "up"], check=True)
    out = subprocess.run([kafka, "env"], capture_output=True, text=True, check=True).stdout
    return dict(line.removeprefix("export ").split("=", 1) for line in out.split("\n")
                if line.startswith("export ") and " " not in line.removeprefix("export "))


def create_topic(env, topic, partitions):
    python = Path(env["KASIO_LAB_VENV"]) / "bin" / "python"
    subprocess.run([python, "-c", (
        "from confluent_kafka.admin import AdminClient, NewTopic\n"
        f"admin = AdminClient({{'bootstrap.servers': '{env['KASIO_LAB_PLAINTEXT']}'}})\n"
        f"admin.create_topics([NewTopic('{topic}', {partitions}, 1)])['{topic}'].result(30)\n"
        # Every partition led before a client starts, so no client meets a topic still
        # being set up (a peer failed on one with NoLeader).
        "import time\n"
        "for _ in range(300):\n"
        f"    t = admin.list_topics('{topic}', timeout=10).topics['{topic}']\n"
        f"    if len(t.partitions) == {partitions} and all(p.leader >= 0 for p in t.partitions.values()):\n"
        "        break\n"
        "    time.sleep(0.01)\n")],
        check=True)


def table(runs, clients, codecs, label="codec"):
    """Prints the Markdown table of `runs` ({(client, codec): [result, ...]}): the best and
    the median throughput, and the median CPU per million records; the median shows what
    a run on a busy machine typically gets, the best what the client can do."""
    print(f"| client | {label} | records/s, best | records/s, median | client CPU s per million records, median |")
    print("| --- | --- | ---: | ---: | ---: |")
    for codec in codecs:
        for client in clients:
            rs = runs.get((client, codec))
            if not rs:
                print(f"| {client} | {codec} | failed | | |")
                continue
            rates = sorted(r["records_per_second"] for r in rs)
            cpus = sorted(r["cpu_seconds_per_million"] for r in rs)
            print(f"| {client} | {codec} | {rates[-1]:,.0f} | {rates[len(rates) // 2]:,.0f}"
                  f" | {cpus[len(cpus) // 2]:.2f} |")
