"""Python's stock grpcio against quiltd's Unix socket, with default options.

Discovers quiltd's API through server reflection (grpcio-reflection's
client, which speaks v1alpha), builds the message classes from what it
describes, and makes a unary call and a server-streaming one with them; then
checks grpc.health.v1. Prints one line per check; exits 1 at the first
check that fails.

Usage: grpc_client.py SOCKET
"""

import sys
import threading

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

TIMEOUT = 20


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + (": " + str(detail) if detail else ""), flush=True)
    if not ok:
        sys.exit(1)


def main(socket):
    # Default options: the channel's authority is whatever grpcio makes of
    # the socket path.
    channel = grpc.insecure_channel("unix://" + socket)
    grpc.channel_ready_future(channel).result(timeout=TIMEOUT)

    # Reflection, v1alpha: every service, and a method described.
    db = ProtoReflectionDescriptorDatabase(channel)
    services = sorted(db.get_services())
    want = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "quilt.v1.ContainerService",
        "quilt.v1.ImageService",
        "quilt.v1.NetworkService",
        "quilt.v1.SystemService",
        "quilt.v1.VolumeService",
    ]
    check("reflection lists every service", services == want, services)
    pool = descriptor_pool.DescriptorPool(db)
    svc = pool.FindServiceByName("quilt.v1.ContainerService")
    method = svc.methods_by_name["ListContainers"]
    check(
        "reflection describes ListContainers",
        method.input_type.full_name == "quilt.v1.ListContainersRequest"
        and "page_token" in method.input_type.fields_by_name
        and method.output_type.full_name == "quilt.v1.ListContainersResponse",
        method.input_type.full_name,
    )

    def msg(name):
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))

    def unary(name, req_type, resp_type):
        return channel.unary_unary(
            "/quilt.v1.ContainerService/" + name,
            request_serializer=msg(req_type).SerializeToString,
            response_deserializer=msg(resp_type).FromString,
        )

    create = unary("CreateContainer", "quilt.v1.CreateContainerRequest", "quilt.v1.CreateContainerResponse")
    listing = unary("ListContainers", "quilt.v1.ListContainersRequest", "quilt.v1.ListContainersResponse")
    remove = unary("RemoveContainer", "quilt.v1.RemoveContainerRequest", "quilt.v1.RemoveContainerResponse")
    watch = channel.unary_stream(
        "/quilt.v1.ContainerService/WatchEvents",
        request_serializer=msg("quilt.v1.WatchEventsRequest").SerializeToString,
        response_deserializer=msg("quilt.v1.Event").FromString,
    )

    # Server streaming: WatchEvents sees the container created below.
    events = watch(msg("quilt.v1.WatchEventsRequest")(), timeout=TIMEOUT)
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(e for _, e in zip(range(1), events)))
    reader.start()
    # Unary: a container created, then listed.
    ids = []
    for i in range(20):
        req = msg("quilt.v1.CreateContainerRequest")(
            image="default", command=["true"], name="py-%d" % i, no_start=True
        )
        ids.append(create(req, timeout=TIMEOUT).id)
        reader.join(0.2)
        if seen:
            break
    reader.join(TIMEOUT)
    events.cancel()
    check(
        "WatchEvents streams an event",
        len(seen) == 1 and seen[0].container_id in ids and seen[0].action == "created",
        [(e.name, e.action) for e in seen],
    )
    page = listing(msg("quilt.v1.ListContainersRequest")(page_size=1), timeout=TIMEOUT)
    check(
        "ListContainers answers",
        len(page.containers) == 1 and page.containers[0].id == ids[-1] and
        (page.next_page_token != "") == (len(ids) > 1),
        [c.name for c in page.containers],
    )
    for i in ids:
        remove(msg("quilt.v1.RemoveContainerRequest")(id=i, force=True), timeout=TIMEOUT)

    # Health: "" and each service SERVING; an unknown one NOT_FOUND.
    health = health_pb2_grpc.HealthStub(channel)
    for name in [""] + want[3:]:
        r = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=TIMEOUT)
        check("health of %r" % name, r.status == health_pb2.HealthCheckResponse.SERVING, r.status)
    try:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=TIMEOUT)
        check("health of an unknown service", False, "answered")
    except grpc.RpcError as e:
        check("health of an unknown service", e.code() == grpc.StatusCode.NOT_FOUND, e.code())
    print("all passed", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
