"""testcontainers-python against Quilt's Docker API, as a test suite uses
it: a container with an exposed port (published on a free host port),
waiting for its log line, reaching it through the host port the library
reads back from inspect, an exec, and the container removed on exit.

usage: testcontainers_client.py DOCKER_SOCKET IMAGE
Prints "all passed" last when every check held.
"""
import os
import sys
import urllib.request

sock, image = sys.argv[1], sys.argv[2]
os.environ["DOCKER_HOST"] = "unix://" + sock
# The reaper is an image from Docker Hub, which this machine cannot reach:
# the context manager removes the container instead.
os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
# This process runs beside quiltd, not in one of its containers (even when
# the machine itself is a container with /.dockerenv): ports are on the
# daemon's host.
os.environ["TESTCONTAINERS_CONNECTION_MODE"] = "docker_host"

from testcontainers.core.container import DockerContainer  # noqa: E402
from testcontainers.core.waiting_utils import wait_for_logs  # noqa: E402


def check(cond, what):
    if not cond:
        raise SystemExit("FAILED: " + what)
    print("ok:", what, flush=True)


script = "mkdir -p /www && echo tc-ok > /www/index.html && echo ready && exec httpd -f -p 80 -h /www"
with DockerContainer(image).with_command(["sh", "-c", script]).with_exposed_ports(80) as c:
    wait_for_logs(c, "ready", timeout=30)
    host = c.get_container_host_ip()
    port = c.get_exposed_port(80)
    check(int(port) > 0, "a host port was published: %r" % port)
    body = b""
    for _ in range(50):
        try:
            body = urllib.request.urlopen("http://%s:%s/" % (host, port), timeout=5).read()
            break
        except OSError:
            import time
            time.sleep(0.1)
    check(body == b"tc-ok\n", "reached through %s:%s: %r" % (host, port, body))
    code, out = c.exec(["cat", "/www/index.html"])
    check(code == 0 and out == b"tc-ok\n", "exec: %r %r" % (code, out))
    cid = c.get_wrapped_container().id

import docker  # noqa: E402

client = docker.DockerClient(base_url="unix://" + sock)
check(cid not in [x.id for x in client.containers.list(all=True)], "removed on exit")
print("all passed")
