"""kasio over TLS and SASL against the real broker's listeners (through the `kasio`
binary, so the tokio runtime; tests/runtimes.rs runs the same on every runtime): produce
and consume work for each mechanism on each listener; a wrong password, an untrusted
certificate, a wrong host name and a plaintext listener each fail fast with one clear
line; a client certificate is presented; sessions are renewed in band (KIP-368).
Runs the release build of the `kasio` binary, which scripts/test builds before the lab."""

import os
import socket
import ssl
import subprocess
import threading
import time
import uuid

import pytest
from confluent_kafka.admin import NewTopic
from test_admin import KASIO, name, peer_admin


def env(key):
    value = os.environ.get(key)
    if not value:
        pytest.fail(f"{key} is not set: start the lab with scripts/kafka up")
    return value


def run(bootstrap, props, *args, stdin=None, timeout=60):
    assert KASIO.exists(), f"build it first: cargo build --release -p kasio-cli ({KASIO})"
    flags = [x for k, v in props.items() for x in ("-X", f"{k}={v}")]
    return subprocess.run([str(KASIO), "-b", bootstrap, *flags, *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def sasl(mechanism, password=None):
    props = {"sasl.mechanism": mechanism, "sasl.username": env("KASIO_LAB_USER")}
    if mechanism != "OAUTHBEARER":
        props["sasl.password"] = password or env("KASIO_LAB_PASSWORD")
    return props


LISTENERS = {
    "SSL": ("KASIO_LAB_SSL", lambda: {"security.protocol": "SSL", "ssl.ca.location": env("KASIO_LAB_CA")}),
    "SASL_PLAINTEXT": ("KASIO_LAB_SASL_PLAINTEXT", lambda: {"security.protocol": "SASL_PLAINTEXT"}),
    "SASL_SSL": ("KASIO_LAB_SASL_SSL", lambda: {"security.protocol": "SASL_SSL", "ssl.ca.location": env("KASIO_LAB_CA")}),
}

CASES = [("SSL", None)] + [(listener, m) for listener in ("SASL_PLAINTEXT", "SASL_SSL")
                           for m in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")]


@pytest.mark.parametrize("listener,mechanism", CASES)
def test_produce_and_consume_on_every_listener_and_mechanism(listener, mechanism):
    var, base = LISTENERS[listener]
    props = {**base(), **(sasl(mechanism) if mechanism else {})}
    t = name(f"sec-{listener.lower()}")
    peer_admin().create_topics([NewTopic(t, 2, 1)])[t].result(30)
    lines = "".join(f"k{i}:v{i}\n" for i in range(2000))
    r = run(env(var), props, "produce", t, "-K", ":", stdin=lines)
    assert r.returncode == 0, r.stderr
    r = run(env(var), props, "consume", t, "-o", "beginning", "-e", "-f", "%k:%s\\n")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == sorted(lines.splitlines())


def fails_fast(bootstrap, props, expected, *args):
    start = time.time()
    r = run(bootstrap, props, *(args or ("cluster",)))
    took = time.time() - start
    assert r.returncode == 1, r.stdout
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("kasio: "), r.stderr
    assert expected in r.stderr, r.stderr
    assert took < 5, f"took {took:.1f} s"
    return r.stderr


def test_a_wrong_password_fails_fast_for_every_password_mechanism():
    for mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        props = {**LISTENERS["SASL_SSL"][1](), **sasl(mechanism, password="wrong-" + uuid.uuid4().hex)}
        err = fails_fast(env("KASIO_LAB_SASL_SSL"), props, "kasio: authentication failed")
        assert "wrong-" not in err, "the password leaked into the error"
    # The producer and consumer fail the same way, not only the admin client.
    props = {**LISTENERS["SASL_PLAINTEXT"][1](), **sasl("SCRAM-SHA-512", password="nope")}
    fails_fast(env("KASIO_LAB_SASL_PLAINTEXT"), props, "authentication failed", "consume", "x", "-e")


def test_an_untrusted_certificate_fails_fast():
    # Without the lab's CA only the Mozilla roots are trusted.
    fails_fast(env("KASIO_LAB_SSL"), {"security.protocol": "SSL"}, "certificate is not trusted")
    fails_fast(env("KASIO_LAB_SSL"), {"security.protocol": "SSL", "ssl.endpoint.identification.algorithm": ""},
               "certificate is not trusted")


def test_a_plaintext_listener_spoken_to_in_tls_fails_fast():
    props = {"security.protocol": "SSL", "ssl.ca.location": env("KASIO_LAB_CA")}
    fails_fast(env("KASIO_LAB_PLAINTEXT"), props, "is the listener TLS?")


def test_a_wrong_security_protocol_is_named():
    sasl_on_tls = {"security.protocol": "SASL_SSL", "ssl.ca.location": env("KASIO_LAB_CA"),
                   "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "a", "sasl.password": "b"}
    fails_fast(env("KASIO_LAB_SSL"), sasl_on_tls, "the listener speaks no SASL")
    fails_fast(env("KASIO_LAB_SASL_PLAINTEXT"), {}, "does the listener expect SASL?")
    fails_fast(env("KASIO_LAB_SASL_SSL"), LISTENERS["SSL"][1](), "does the listener expect SASL?")


def test_a_certificate_for_another_host_fails_fast():
    """A TLS server on 127.0.0.1 presenting a certificate the lab's CA signed for another
    name (the lab's client certificate, CN=kasio-client): trusted, but not for this host."""
    certs = os.path.dirname(env("KASIO_LAB_CA"))
    key = os.path.join(certs, "client.key")
    if not os.path.exists(key):
        subprocess.run(["openssl", "pkcs12", "-in", os.path.join(certs, "client.p12"), "-nocerts", "-nodes",
                        "-passin", f"pass:{env('KASIO_LAB_STORE_PASSWORD')}", "-out", key], check=True,
                       capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(certs, "client.pem"), key)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def serve():
        for _ in range(8):
            try:
                conn, _ = server.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    try:
        props = {"security.protocol": "SSL", "ssl.ca.location": env("KASIO_LAB_CA")}
        fails_fast(f"127.0.0.1:{port}", props, "certificate is for another host")
    finally:
        server.close()


def test_a_client_certificate_is_presented():
    """The lab asks for client certificates: with one, the broker sees kasio as
    User:CN=kasio-client, which an ACL then refuses."""
    certs = os.path.dirname(env("KASIO_LAB_CA"))
    key = os.path.join(certs, "client.key")
    if not os.path.exists(key):
        subprocess.run(["openssl", "pkcs12", "-in", os.path.join(certs, "client.p12"), "-nocerts", "-nodes",
                        "-passin", f"pass:{env('KASIO_LAB_STORE_PASSWORD')}", "-out", key], check=True,
                       capture_output=True)
    t = name("sec-mtls")
    peer_admin().create_topics([NewTopic(t, 1, 1)])[t].result(30)
    plain = env("KASIO_LAB_PLAINTEXT")
    r = subprocess.run([str(KASIO), "-b", plain, "acls", "create", "--topic", t, "--principal", "User:CN=kasio-client",
                        "--operation", "describe", "--permission", "deny"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    base = {"security.protocol": "SSL", "ssl.ca.location": env("KASIO_LAB_CA")}
    with_cert = {**base, "ssl.certificate.location": os.path.join(certs, "client.pem"), "ssl.key.location": key}
    deadline = time.time() + 15
    while True:
        r = run(env("KASIO_LAB_SSL"), with_cert, "topics", "describe", t)
        if r.returncode != 0 and "TOPIC_AUTHORIZATION_FAILED" in r.stdout:
            break
        assert time.time() < deadline, (r.stdout, r.stderr)
        time.sleep(0.3)
    # Without the certificate the same listener lets the anonymous client describe it.
    r = run(env("KASIO_LAB_SSL"), base, "topics", "describe", t)
    assert r.returncode == 0, r.stdout + r.stderr


def client_ports(port):
    """The local ports of established connections to `port` on this machine."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                found.add(int(local.rsplit(":", 1)[1], 16))
    return found


def test_sessions_are_renewed_on_their_connections():
    """The lab ends SCRAM-SHA-512 sessions on SASL_PLAINTEXT after KASIO_LAB_REAUTH_MS: a
    producer sending for several lifetimes re-authenticates in band (KIP-368), so it keeps
    its connections, and every record arrives."""
    lifetime = int(env("KASIO_LAB_REAUTH_MS")) / 1000
    bootstrap = env("KASIO_LAB_SASL_PLAINTEXT")
    port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])
    props = {"security.protocol": "SASL_PLAINTEXT", **sasl("SCRAM-SHA-512")}
    t = name("sec-reauth")
    peer_admin().create_topics([NewTopic(t, 1, 1)])[t].result(30)
    flags = [x for k, v in {**props, "linger.ms": "0"}.items() for x in ("-X", f"{k}={v}")]
    proc = subprocess.Popen([str(KASIO), "-b", bootstrap, *flags, "produce", t], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = set()
    count = 0
    end = time.time() + 4 * lifetime
    while time.time() < end:
        proc.stdin.write(f"record {count}\n")
        proc.stdin.flush()
        count += 1
        seen |= client_ports(port)
        time.sleep(0.05)
    proc.stdin.close()
    assert proc.wait(60) == 0, proc.stderr.read()
    # The bootstrap connection and the leader's: a producer that reconnected instead of
    # renewing would have opened about two more per lifetime.
    assert len(seen) <= 3, f"{len(seen)} connections over {4 * lifetime:.0f} s: {sorted(seen)}"
    r = run(bootstrap, props, "consume", t, "-o", "beginning", "-e", "-f", "%s\\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"record {i}" for i in range(count)]
