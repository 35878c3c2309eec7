"""An in-process Flower `Grid`: the ServerApp's messages go straight to a `ClientApp`, one call per node.

Flower's simulation engine runs the ClientApp in Ray actors; on a small machine (or in tests) starting Ray costs
more than the tiny model's training. This grid runs the same ServerApp strategy code (`Strategy.start`, Flower's
FedAvg/FedProx aggregation, its DP wrappers and mods) and the same ClientApp, only the transport differs: each
message is serialised to Flower's protobuf wire format and back, so a client sees exactly what it would over
gRPC, and the bytes each way are counted.

    grid = InProcessGrid(client_app, num_nodes=3, run_config={})
    server_app(grid, Context(...))   # or strategy.start(grid=grid, ...)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import uuid4

from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.supercore.run import Run


def _over_the_wire(message: Message) -> tuple[Message, int]:
    """Serialise to protobuf and back (what gRPC would carry): (the copy the receiver gets, its size in bytes)."""
    from flwr.common.serde import message_from_proto, message_to_proto

    proto = message_to_proto(message)
    return message_from_proto(proto), proto.ByteSize()


class InProcessGrid(Grid):
    """Delivers each message to `client_app` for its node, synchronously, in this process."""

    def __init__(self, client_app: ClientApp, num_nodes: int, run_config: dict[str, Any] | None = None,
                 run_id: int = 1) -> None:
        from flwr.common.constant import SUPERLINK_NODE_ID
        from flwr.supercore.task_identity import TaskIdentity

        self.client_app = client_app
        self._run = Run.create_empty(run_id)
        # messages are stamped with this process's task identity; Flower's runtimes set it, so do we
        TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, run_id, SUPERLINK_NODE_ID
        self.contexts = {
            node_id: Context(run_id=run_id, node_id=node_id, state=RecordDict(), run_config=dict(run_config or {}),
                             node_config={"partition-id": index, "num-partitions": num_nodes})
            for index, node_id in enumerate(range(1, num_nodes + 1))
        }
        self.bytes_sent = 0
        self.bytes_received = 0

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str,
                       ttl: float | None = None) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        raise NotImplementedError("InProcessGrid delivers synchronously: use send_and_receive")

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        raise NotImplementedError("InProcessGrid delivers synchronously: use send_and_receive")

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        replies = []
        for message in messages:
            message.metadata.__dict__["_message_id"] = str(uuid4())
            message.metadata.__dict__["_run_id"] = self._run.run_id
            received, size = _over_the_wire(message)
            self.bytes_sent += size
            reply = self.client_app(received, self.contexts[message.metadata.dst_node_id])
            reply.metadata.__dict__["_message_id"] = str(uuid4())
            returned, size = _over_the_wire(reply)
            self.bytes_received += size
            replies.append(returned)
        return replies
