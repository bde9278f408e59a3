"""A client nobody here wrote: the Debian python3-kubernetes (22.6) through hoopgate.

Usage: client.py HOST CA_FILE NAMESPACE WATCH_NAME   (the bearer token on stdin's first line)
Prints one JSON object per line: {"step": ..., ...}; the test drives the world and asserts each step.
"""
import json
import select
import sys

from kubernetes import client, watch
from kubernetes.stream import portforward, stream
from kubernetes.stream import ws_client


class _PendingAwarePoll:
    """select.poll that also reports an SSL socket holding decrypted bytes.

    python-kubernetes 22.6 waits in poll() for the next frame even when several frames arrived in one TLS
    record and sit decrypted inside the SSLSocket, so a short exec can hang (kubernetes-client/python#2414,
    fixed upstream by #2650). Real API servers coalesce frames too; this shim keeps the test about hoopgate.
    """

    def __init__(self):
        self._poll = select.poll()
        self._socks = []

    def register(self, sock, mask):
        self._socks.append(sock)
        self._poll.register(sock, mask)

    def unregister(self, sock):
        self._socks.remove(sock)
        self._poll.unregister(sock)

    def poll(self, timeout=None):
        ready = [(s.fileno(), select.POLLIN) for s in self._socks if getattr(s, "pending", lambda: 0)() > 0]
        return ready or self._poll.poll(timeout)


class _SelectWithPendingAwarePoll:
    POLLIN = select.POLLIN
    poll = _PendingAwarePoll
    select = staticmethod(select.select)


ws_client.select = _SelectWithPendingAwarePoll


def emit(step, **fields):
    print(json.dumps({"step": step, **fields}), flush=True)


def main():
    host, ca_file, namespace, watch_name = sys.argv[1:5]
    token = sys.stdin.readline().strip()
    config = client.Configuration()
    config.host = host
    config.ssl_ca_cert = ca_file
    config.api_key = {"authorization": token}
    config.api_key_prefix = {"authorization": "Bearer"}
    v1 = client.CoreV1Api(client.ApiClient(config))

    pods = v1.list_namespaced_pod(namespace, _request_timeout=20)
    emit("list", pods=sorted(p.metadata.name for p in pods.items))

    # Watch from the list's resourceVersion: the test creates WATCH_NAME once it reads "watching".
    configmaps = v1.list_namespaced_config_map(namespace, _request_timeout=20)
    emit("watching", resourceVersion=configmaps.metadata.resource_version)
    seen = None
    w = watch.Watch()
    for event in w.stream(v1.list_namespaced_config_map, namespace,
                          resource_version=configmaps.metadata.resource_version,
                          timeout_seconds=20, _request_timeout=25):
        if event["object"].metadata.name == watch_name:
            seen = {"type": event["type"], "name": event["object"].metadata.name, "data": event["object"].data}
            w.stop()
    emit("watch", event=seen)

    patched = v1.patch_namespaced_config_map(watch_name, namespace, {"data": {"patched": "by-python"}}, _request_timeout=20)
    emit("patch", data=patched.data)

    output = stream(v1.connect_get_namespaced_pod_exec, "web-0", namespace,
                    command=["echo", "hello from python"], stderr=True, stdin=False, stdout=True, tty=False,
                    _request_timeout=20)
    emit("exec", output=output)

    # Interactive: stdin is written as WebSocket text frames, the exit code read from the status channel.
    session = stream(v1.connect_get_namespaced_pod_exec, "web-0", namespace,
                     command=["sh"], stderr=True, stdin=True, stdout=True, tty=False,
                     _preload_content=False)
    session.write_stdin("echo typed in python\nexit 3\n")
    out = ""
    while session.is_open():
        session.update(timeout=5)
        out += session.read_stdout()
    session.close()
    emit("exec-stdin", output=out, returncode=session.returncode)

    forward = portforward(v1.connect_get_namespaced_pod_portforward, "web-0", namespace, ports="8080")
    sock = forward.socket(8080)
    sock.setblocking(True)
    sock.settimeout(10)
    payload = b"ping through hoopgate from python\n" * 50
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    sock.close()
    emit("portforward", bytes=len(received), same=received == payload, error=forward.error(8080))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 — the test prints what failed and where
        emit("error", type=type(e).__name__, message=str(e)[:2000])
        sys.exit(1)
