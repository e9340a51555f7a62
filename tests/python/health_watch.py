"""grpc.health.v1 Watch with Python's grpcio over quiltd's Unix socket.

Watches each service named on the command line (the empty string for the
server itself) and prints "WATCH <service> <STATUS>" for every update and
"END <service> <CODE>" when the stream ends, flushing each line.

Usage: health_watch.py SOCKET SERVICE...
"""

import sys
import threading

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

NAMES = {v: k for k, v in health_pb2.HealthCheckResponse.ServingStatus.items()}
lock = threading.Lock()


def say(line):
    with lock:
        print(line, flush=True)


def watch(stub, service):
    label = service or '""'
    try:
        for r in stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=60):
            say("WATCH %s %s" % (label, NAMES[r.status]))
        say("END %s OK" % label)
    except grpc.RpcError as e:
        say("END %s %s" % (label, e.code().name))


def main(socket, services):
    channel = grpc.insecure_channel("unix://" + socket)
    stub = health_pb2_grpc.HealthStub(channel)
    threads = [threading.Thread(target=watch, args=(stub, s)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
