"""The Flower components of `tunesmith federated` for deployment (`flwr run`): the config comes from the run
config (`config-file`, `overrides`), each SuperNode's data from its node config (`partition-id`, or
`data-file`)."""

from tunesmith.recipes.federated import build_server_app
from tunesmith.recipes.federated_client import build_client_app

server_app = build_server_app()
client_app = build_client_app()
