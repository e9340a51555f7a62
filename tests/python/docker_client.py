"""docker-py against Quilt's Docker API, doing what agent frameworks do:
run a sandbox detached, put files, run commands (plain, streamed, demuxed,
with stdin), get files back, read and follow logs, stop, wait, remove; list
and get images; and check the errors of what is not supported.

usage: docker_client.py DOCKER_SOCKET IMAGE [NAMED_IMAGE]
Prints "all passed" last when every check held.
"""
import io
import sys
import tarfile

import docker
from docker.errors import APIError, ImageNotFound, NotFound

sock, image = sys.argv[1], sys.argv[2]
named_image = sys.argv[3] if len(sys.argv) > 3 else None
client = docker.DockerClient(base_url="unix://" + sock, version="auto", timeout=60)


def check(cond, what):
    if not cond:
        raise SystemExit("FAILED: " + what)
    print("ok:", what, flush=True)


check(client.ping() is True, "ping")
check(client.version()["ApiVersion"] == "1.41", "version")
check(client.info()["OSType"] == "linux", "info")

# A plain run: output returned, container removed.
out = client.containers.run(image, ["sh", "-c", "echo hello; echo oops >&2"], remove=True)
check(out == b"hello\n", "run returns stdout: %r" % out)

c = client.containers.run(
    image,
    ["sh", "-c", "echo booted; exec sleep 300"],
    detach=True,
    name="sandbox",
    labels={"role": "agent"},
    environment={"GREETING": "hi there"},
    working_dir="/tmp",
    mem_limit="64m",
    nano_cpus=500000000,
    pids_limit=64,
)
c.reload()
check(c.status == "running", "detached run is running: " + c.status)
check(c.name == "sandbox", "name")
check(c.attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024, "memory limit")
check(c.attrs["HostConfig"]["NanoCpus"] == 500000000, "nano cpus")
check(c.labels == {"role": "agent"}, "labels")
check([x.id for x in client.containers.list(filters={"label": "role=agent"})] == [c.id], "list by label")
check([x.id for x in client.containers.list(filters={"name": "sandbox"})] == [c.id], "list by name")
check(client.containers.list(filters={"status": "exited"}) == [], "list by status")

# exec_run, the ways agent frameworks call it.
r = c.exec_run(["sh", "-c", 'echo "$GREETING"; pwd; echo e >&2; exit 7'])
check(r.exit_code == 7, "exec exit code: %r" % (r.exit_code,))
check(b"hi there\n/tmp\n" in r.output and b"e\n" in r.output, "exec output: %r" % r.output)
r = c.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
check(r.output == (b"out\n", b"err\n"), "exec demux: %r" % (r.output,))
r = c.exec_run(["sh", "-c", "for i in 1 2 3; do echo $i; done"], stream=True)
streamed = b"".join(r.output)
check(streamed == b"1\n2\n3\n", "exec stream: %r" % streamed)
r = c.exec_run(["sh", "-c", "echo a; echo b >&2"], stream=True, demux=True)
parts = list(r.output)
check((b"a\n", None) in parts and (None, b"b\n") in parts, "exec stream+demux: %r" % parts)
r = c.exec_run(["id", "-u"], user="1000")
check(r.output == b"1000\n", "exec as a user: %r" % r.output)
r = c.exec_run(["sh", "-c", "tty || true"], tty=True)
check(r.output.startswith(b"/dev/pts/"), "exec with a tty: %r" % r.output)
# Long enough to still run when docker-py inspects it (ExitCode None).
r = c.exec_run(["sleep", "2"], detach=True)
check(not r.output and r.exit_code is None, "detached exec: %r" % (r,))

# stdin through the hijacked socket.
api = client.api
eid = api.exec_create(c.id, ["cat"], stdin=True)["Id"]
s = api.exec_start(eid, socket=True)
raw = getattr(s, "_sock", s)
raw.sendall(b"through stdin\n")
import socket as _socket
raw.shutdown(_socket.SHUT_WR)
got = b""
while True:
    chunk = raw.recv(4096)
    if not chunk:
        break
    got += chunk
check(got == b"\x01\x00\x00\x00\x00\x00\x00\x0ethrough stdin\n", "exec stdin: %r" % got)
info = api.exec_inspect(eid)
check(info["ExitCode"] == 0 and info["Running"] is False, "exec inspect: %r" % info)

# Files in and out.
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    data = b"print('hi')\n"
    ti = tarfile.TarInfo("task.py")
    ti.size = len(data)
    t.addfile(ti, io.BytesIO(data))
check(c.put_archive("/tmp", buf.getvalue()) is True, "put_archive")
check(c.exec_run(["cat", "/tmp/task.py"]).output == b"print('hi')\n", "the file is there")
stream, stat = c.get_archive("/tmp/task.py")
check(stat["name"] == "task.py" and stat["size"] == 12, "get_archive stat: %r" % stat)
t = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
check(t.extractfile("task.py").read() == b"print('hi')\n", "get_archive content")
_, stat = c.get_archive("/tmp")
check(stat["mode"] & (1 << 31), "a directory's stat: %r" % stat)
try:
    c.get_archive("/no/such/file")
    check(False, "get_archive of a missing file fails")
except NotFound:
    check(True, "get_archive of a missing file is 404")

# Logs: all, then followed while the container writes.
check(c.logs() == b"booted\n", "logs")
w = client.containers.run(image, ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done; exit 4"], detach=True)
lines = b"".join(w.logs(stream=True, follow=True))
check(lines == b"line1\nline2\nline3\n", "logs(stream=True): %r" % lines)
check(w.wait()["StatusCode"] == 4, "wait")
check(b"line3" in w.logs(tail=1) and b"line1" not in w.logs(tail=1), "logs tail")
check(w.logs(timestamps=True).split(b" ")[0].endswith(b"Z"), "logs timestamps")
w.remove()

# Attach (what containers.run without detach does on the CLI), restart, kill.
k = client.containers.run(image, ["sh", "-c", "sleep 0.3; echo a1; sleep 0.1; echo a2 >&2"], detach=True)
out = b"".join(k.attach(stdout=True, stderr=True, stream=True, logs=True))
check(out == b"a1\na2\n", "attach: %r" % out)
k.restart(timeout=1)
k.reload()
check(k.status == "running", "restart: " + k.status)
k.kill()
k.reload()
check((k.status, k.attrs["State"]["ExitCode"]) == ("exited", 137), "kill: %s" % k.attrs["State"])
k.remove()

# The main process with stdin and a terminal: attach_socket, the way
# interactive agent tools drive a long-lived shell.
k = client.containers.create(image, ["sh"], stdin_open=True, tty=True)
check(k.attrs["Config"]["Tty"] and k.attrs["Config"]["OpenStdin"], "tty config: %r" % k.attrs["Config"])
s = k.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
raw = getattr(s, "_sock", s)
k.start()
k.resize(height=21, width=55)
raw.sendall(b"echo size=$(stty size) tty=$(tty); exit 6\n")
got = b""
raw.settimeout(30)
while True:
    chunk = raw.recv(4096)
    if not chunk:
        break
    got += chunk
# A terminal's output comes raw (no stream headers), CR LF line ends.
check(b"size=21 55 tty=/dev/pts/0\r\n" in got, "attach with a tty: %r" % got)
check(k.wait(timeout=30)["StatusCode"] == 6, "tty exit")
check(b"size=21 55" in k.logs(), "tty logs: %r" % k.logs())
k.remove()

# Stop, wait, remove.
# Stats (one sample) and pause/unpause.
st = c.stats(stream=False)
check(st["pids_stats"]["current"] >= 1 and st["memory_stats"]["usage"] > 0, "stats: %r" % st)
cpu_delta = st["cpu_stats"]["cpu_usage"]["total_usage"] - st["precpu_stats"]["cpu_usage"]["total_usage"]
check(cpu_delta >= 0 and st["cpu_stats"]["online_cpus"] >= 1, "stats cpu: %r" % st["cpu_stats"])
# The streaming form: one decoded sample a second, until the client stops.
stream = c.stats(stream=True, decode=True)
samples = [next(stream), next(stream)]
stream.close()
check(all(x["pids_stats"]["current"] >= 1 for x in samples), "stats stream: %r" % samples)
check(samples[1]["read"] > samples[0]["read"], "stats stream advances: %r" % [x["read"] for x in samples])
c.pause()
c.reload()
check(c.status == "paused", "paused: " + c.status)
try:
    c.pause()
    check(False, "pause twice refused")
except APIError as e:
    check(e.status_code == 409, "pause twice: %s" % e)
c.unpause()
c.reload()
check(c.status == "running", "unpaused: " + c.status)

c.stop(timeout=1)
c.reload()
check(c.status == "exited", "stopped: " + c.status)
check(c.wait()["StatusCode"] == 137 or c.wait()["StatusCode"] == 143, "wait after stop")
c.remove()
try:
    client.containers.get("sandbox")
    check(False, "removed")
except NotFound:
    check(True, "removed")

# Refusals are docker's error shape, never silence.
try:
    client.containers.run(image, ["true"], publish_all_ports=True, detach=True)
    check(False, "publish all refused")
except APIError as e:
    check(e.status_code == 400 and "PublishAllPorts" in str(e), "publish all refused: %s" % e)
try:
    client.containers.run(image, ["true"], privileged=True, detach=True)
    check(False, "privileged refused")
except APIError as e:
    check(e.status_code == 400 and "Privileged" in str(e), "privileged refused: %s" % e)
# A pull from a registry nobody serves: docker's JSON messages end with the error.
msgs = list(client.api.pull("127.0.0.1:1/nothing", tag="1", stream=True, decode=True))
check(bool(msgs) and "error" in msgs[-1], "pull error reported: %r" % msgs[-1:])
try:
    client.images.get("no-such-image")
    check(False, "missing image")
except ImageNotFound:
    check(True, "missing image is ImageNotFound")

# Images.
if named_image:
    names = [t for i in client.images.list() for t in i.tags]
    check(named_image + ":latest" in names, "images.list: %r" % names)
    img = client.images.get(named_image)
    check(named_image + ":latest" in img.tags, "images.get")
    out = client.containers.run(named_image, ["echo", "from named"], remove=True)
    check(out == b"from named\n", "run a named image")

# Events, from now on, until a deadline.
import time
events = client.events(decode=True, filters={"type": "container"}, until=int(time.time()) + 3)
e = client.containers.run(image, ["true"], detach=True, name="evented")
e.wait()
e.remove()
seen = [(x["Action"], x["Actor"]["Attributes"]["name"]) for x in events]
check(
    [a for a, n in seen if n == "evented"] == ["create", "start", "die", "destroy"],
    "events: %r" % seen,
)

# Volumes.
v = client.volumes.create("agent-data", labels={"k": "v"})
check(client.volumes.get("agent-data").attrs["Labels"] == {"k": "v"}, "volume inspect")
out = client.containers.run(image, ["sh", "-c", "echo kept > /data/f; cat /data/f"], volumes={"agent-data": {"bind": "/data", "mode": "rw"}}, remove=True)
check(out == b"kept\n", "volume mounted")
v.remove()

# Restart policies: on-failure with a maximum.
r = client.containers.run(
    image, ["sh", "-c", "exit 3"], detach=True,
    restart_policy={"Name": "on-failure", "MaximumRetryCount": 2},
)
deadline = time.time() + 30
while time.time() < deadline:
    r.reload()
    if r.attrs["RestartCount"] == 2 and r.status == "exited":
        break
    time.sleep(0.2)
check(
    r.attrs["RestartCount"] == 2 and r.status == "exited"
    and r.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2},
    "restart policy: %r %r" % (r.status, r.attrs["HostConfig"]["RestartPolicy"]),
)
r.remove()

check(client.containers.list(all=True) == [], "nothing left")
print("all passed")
