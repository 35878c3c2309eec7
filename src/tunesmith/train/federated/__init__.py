"""Federated fine-tuning over adapters with Flower: the reusable parts (the recipe wires them up).

- `partition`: seeded IID / Dirichlet non-IID splits of one training split among clients.
- `adapter_arrays`: only the adapter tensors go over the wire (peft state dict <-> Flower `ArrayRecord`).
- `proximal`: the client-side strategy `federated` (the one loop, plus FedProx's proximal term).
- `client`: a client's local training and validation through `train.loop.train`.
- `privacy`: per-round accounting of the clients' Gaussian noise (opacus RDP).
- `server`: Flower's FedAvg / FedProx (wrapped for DP) and the per-round, per-client report.
- `grid`: an in-process Flower `Grid` that hands messages straight to a `ClientApp` (no Ray).

Imports no torch or flwr at package import time.
"""
