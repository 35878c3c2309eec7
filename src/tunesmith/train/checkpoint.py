"""Atomic, pickle-free training checkpoints: `run_dir/checkpoints/step-000123/`.

A checkpoint holds everything a resumed run needs to continue bit for bit: the trainable weights, optimizer and
scheduler state, RNG states (python, numpy, torch CPU, CUDA), the data position, the strategy's state and the
metrics logged so far. Tensors go to safetensors; everything else to JSON (nested structures are encoded with
their tensors replaced by references into `state.safetensors`). Nothing is ever pickled, so loading a checkpoint
cannot run code.

Atomicity: a checkpoint is written into `step-000123.tmp-<pid>/`, each file fsynced, a `COMPLETE` marker written
last, the folder fsynced and renamed to `step-000123/`, then the parent fsynced. A folder without the marker, or
with a `.tmp-` name, is never loaded; `latest_complete_checkpoint` also deletes tmp folders of dead processes.
Old checkpoints are renamed to a tmp name before deletion so a half-deleted one is never picked either.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.core.durable import fsync_path
from tunesmith.core.errors import CheckpointError
from tunesmith.core.safe_files import refuse_pickles_in, require_safetensors
from tunesmith.models.adapters import load_trainable_state_dict, trainable_state_dict

if TYPE_CHECKING:
    import torch
    from torch import nn

    from tunesmith.train.strategy import Strategy

CHECKPOINTS_DIR = "checkpoints"
MARKER = "COMPLETE"
WEIGHTS_FILE = "trainable.safetensors"
STATE_TENSORS_FILE = "state.safetensors"
STATE_JSON_FILE = "state.json"
FORMAT_VERSION = 1


@dataclass
class CheckpointState:
    """What a checkpoint says about where training stopped (the tensors are restored in place)."""

    path: Path
    step: int
    """Optimizer steps completed."""
    epoch: int
    batch_index: int
    """Index of the next micro-batch within `epoch`."""
    metrics: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


# ----------------------------------------------------------------------------- encoding (no pickle)


def _encode(obj: Any, key: str, tensors: dict[str, Any]) -> Any:
    """JSON-able form of `obj`; tensors and numpy arrays are moved into `tensors` and referenced by key."""
    import numpy as np
    import torch

    if isinstance(obj, torch.Tensor):
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        tensors[key] = torch.from_numpy(obj.astype(np.int64) if obj.dtype.kind in "iu" else obj.copy())
        return {"__ndarray__": key, "dtype": str(obj.dtype)}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, f"{key}.{k}", tensors) for k, v in obj.items()}
        items = [
            [_encode(k, f"{key}.k{i}", tensors), _encode(v, f"{key}.{i}", tensors)]
            for i, (k, v) in enumerate(obj.items())
        ]
        return {"__items__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    raise CheckpointError(
        f"cannot store a {type(obj).__name__} at {key!r} in a checkpoint: use tensors or JSON values"
    )


def _decode(obj: Any, tensors: dict[str, Any]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__ndarray__" in obj:
        return tensors[obj["__ndarray__"]].numpy().astype(obj["dtype"])
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["__items__"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


# ----------------------------------------------------------------------------- RNG


def capture_rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch_cpu": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(tuple(state["numpy"]))
    torch.set_rng_state(state["torch_cpu"])
    cuda = state.get("torch_cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# ----------------------------------------------------------------------------- file system


def _write_json(path: Path, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())


def _write_safetensors(path: Path, tensors: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    save_file(tensors, str(path))
    fsync_path(path)


def _write_marker(folder: Path) -> None:
    """The last file written: its presence means every other file is complete and durable."""
    _write_json(folder / MARKER, {"format_version": FORMAT_VERSION})


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tmp_owner_pid(name: str) -> int | None:
    if ".tmp-" not in name:
        return None
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def _remove_dir(path: Path) -> None:
    """Rename to a tmp name first (atomic), then delete: a half-deleted folder never looks complete."""
    doomed = path.with_name(f"{path.name}.tmp-del-{os.getpid()}")
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def clean_stale_tmp_dirs(root: Path) -> list[Path]:
    """Delete `*.tmp-<pid>` folders left by processes that no longer run; returns what was removed."""
    removed = []
    for child in root.iterdir() if root.is_dir() else []:
        pid = _tmp_owner_pid(child.name)
        if pid is None or pid == os.getpid() or (pid > 0 and _pid_alive(pid)):
            continue
        shutil.rmtree(child, ignore_errors=True)
        removed.append(child)
    return removed


def complete_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (tmp folders and folders without the marker are skipped)."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    found = []
    for child in root.iterdir() if root.is_dir() else []:
        name = child.name
        if ".tmp-" in name or not name.startswith("step-") or not name[5:].isdigit():
            continue
        if (child / MARKER).is_file():
            found.append((int(name[5:]), child))
    return [path for _, path in sorted(found)]


def latest_complete_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or None; also removes tmp folders of dead processes."""
    clean_stale_tmp_dirs(Path(run_dir) / CHECKPOINTS_DIR)
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None


def prune_checkpoints(run_dir: str | Path, keep: int) -> list[Path]:
    """Keep the newest `keep` complete checkpoints (at least 1); returns the removed ones."""
    found = complete_checkpoints(run_dir)
    doomed = found[: max(0, len(found) - max(1, keep))]
    for path in doomed:
        _remove_dir(path)
    return doomed


# ----------------------------------------------------------------------------- save / load


def save_checkpoint(
    run_dir: str | Path,
    *,
    step: int,
    epoch: int,
    batch_index: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    strategy: Strategy,
    metrics: list[dict[str, Any]],
    meta: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    keep: int | None = None,
) -> Path:
    """Write the checkpoint after `step` optimizer steps atomically; prune to the newest `keep` if given.

    `extra` holds additional JSON/tensor state (e.g. the fp16 grad scaler, elapsed time).
    """
    root = Path(run_dir) / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(step)
    tmp = root / f"{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    tensors: dict[str, Any] = {}
    state = {
        "format_version": FORMAT_VERSION,
        "position": {"step": step, "epoch": epoch, "batch_index": batch_index},
        "optimizer": _encode(optimizer.state_dict(), "optimizer", tensors),
        "scheduler": _encode(scheduler.state_dict() if scheduler is not None else None, "scheduler", tensors),
        "rng": _encode(capture_rng_state(), "rng", tensors),
        "strategy": {"name": strategy.name, "state": _encode(strategy.state_dict(), "strategy", tensors)},
        "extra": _encode(extra or {}, "extra", tensors),
        "metrics": metrics,
        "meta": meta or {},
    }
    _write_safetensors(tmp / WEIGHTS_FILE, {n: t.cpu().contiguous() for n, t in trainable_state_dict(model).items()})
    _write_safetensors(tmp / STATE_TENSORS_FILE, tensors)
    _write_json(tmp / STATE_JSON_FILE, state)
    _write_marker(tmp)
    fsync_path(tmp)
    if final.exists():  # only after a resume from an older step re-reaches this one
        _remove_dir(final)
    os.replace(tmp, final)
    fsync_path(root)
    if keep is not None:
        prune_checkpoints(run_dir, keep)
    return final


def check_checkpoint_files(path: Path) -> None:
    """Refuse a checkpoint folder holding any pickle, or whose tensor files are not safetensors (checked by
    content, so a pickle renamed `.safetensors` is caught): nothing in it is read before this passes."""
    refuse_pickles_in(path, "a tunesmith checkpoint")
    for name in (WEIGHTS_FILE, STATE_TENSORS_FILE):
        if not (path / name).is_file():
            raise CheckpointError(f"{path} has no {name}: it is not a tunesmith checkpoint; pick another one")
        require_safetensors(path / name, "checkpoint tensors")


def read_checkpoint_state(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state.json contents, its tensors) of a complete checkpoint folder."""
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / MARKER).is_file():
        raise CheckpointError(f"{path} is not a complete checkpoint (no {MARKER} marker): pick another one")
    check_checkpoint_files(path)
    with open(path / STATE_JSON_FILE, encoding="utf-8") as f:
        state = json.load(f)
    return state, load_file(str(path / STATE_TENSORS_FILE))


def load_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    strategy: Strategy,
    restore_rng: bool = True,
) -> CheckpointState:
    """Restore weights, optimizer, scheduler, strategy and RNG states in place; return the data position."""
    state, tensors = read_checkpoint_state(path)
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {state.get('format_version')}, expected "
                              f"{FORMAT_VERSION}: resume with the tunesmith version that wrote it")
    if state["strategy"]["name"] != strategy.name:
        raise CheckpointError(f"{path} was written by strategy {state['strategy']['name']!r}, not "
                              f"{strategy.name!r}: use the same train.strategy or start a new run")
    from safetensors.torch import load_file

    load_trainable_state_dict(model, load_file(str(Path(path) / WEIGHTS_FILE)))
    optimizer.load_state_dict(_decode(state["optimizer"], tensors))
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(_decode(state["scheduler"], tensors))
    strategy.load_state_dict(_decode(state["strategy"]["state"], tensors))
    if restore_rng:
        restore_rng_state(_decode(state["rng"], tensors))
    pos = state["position"]
    return CheckpointState(
        path=Path(path),
        step=pos["step"],
        epoch=pos["epoch"],
        batch_index=pos["batch_index"],
        metrics=state["metrics"],
        meta=state["meta"],
        extra=_decode(state["extra"], tensors),
    )
