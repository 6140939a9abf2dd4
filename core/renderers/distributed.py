"""Training one renderer on several processes (GPUs) with ``torch.distributed``: torchrun semantics.

Every rank runs the same trainer (:func:`core.renderers.train.train`) on its own random batches; the
renderer is wrapped in ``DistributedDataParallel`` (NCCL on GPUs, gloo on CPU), which averages the gradients
of each step across the ranks, so the replicas stay equal. Rank 0 alone writes: checkpoints, losses, samples,
the manifest, events for the front-end. A checkpoint is the plain renderer's state, so a model trained on 8
GPUs resumes (or is evaluated, or dubs) in one process, and the other way round.

Two ways in:

* ``emodub train renderer ... --nproc N``: this process becomes rank 0 and starts ranks 1..N-1 as child
  processes (``python -m core.renderers.distributed``), with the environment ``torchrun`` would give them
  (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``). One machine.
* ``torchrun --nnodes ... --nproc-per-node ... -m core.cli train renderer ...``: several machines; each
  process reads its rank from that environment. Ranks other than 0 train silently.

Once a step, the ranks agree on the training clock and on stopping (one small all-reduce, MAX): a cancel of rank
0, or its time budget running out, stops every rank after the same iteration. Ranks other than 0 are forbidden to
write (:func:`core.workspace.atomic.forbid_writes`), so a write that slipped through would fail loudly.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

# How long a rank waits for the others (a dead rank otherwise hangs the rest forever).
TIMEOUT_S = float(os.environ.get("EMODUB_DIST_TIMEOUT_S", "600"))


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands in a distributed run (``world_size`` 1: not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> DistEnv:
        env = os.environ if environ is None else environ
        try:
            world = int(env.get("WORLD_SIZE", "1"))
            rank = int(env.get("RANK", "0"))
            local = int(env.get("LOCAL_RANK", str(rank)))
        except ValueError:
            return cls()
        if world <= 1:
            return cls()
        if not 0 <= rank < world:
            raise ValueError(f"RANK {rank} is outside WORLD_SIZE {world}")
        return cls(rank, world, local)


def backend_for(device: str) -> str:
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def rank_device(device: str, env: DistEnv) -> str:
    """Each rank's own GPU (``cuda:<local rank>``); the CPU for every rank on CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.set_device(env.local_rank)
        return f"cuda:{env.local_rank}"
    return device


@contextlib.contextmanager
def process_group(env: DistEnv, device: str) -> Iterator[None]:
    """Join the process group for the block (``MASTER_ADDR``/``MASTER_PORT`` from the environment)."""
    import torch.distributed as dist

    if not env.active or dist.is_initialized():
        yield
        return
    dist.init_process_group(backend_for(device), init_method="env://", rank=env.rank, world_size=env.world_size,
                            timeout=datetime.timedelta(seconds=TIMEOUT_S))
    try:
        yield
    finally:
        dist.destroy_process_group()


def _group() -> Any:
    """``torch.distributed`` when this process is in a process group, else ``None``."""
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def _numbers(values: list[float]) -> torch.Tensor:
    """``values`` as a float64 tensor where the group's collectives run (NCCL: the GPU)."""
    import torch.distributed as dist

    return torch.tensor(values, dtype=torch.float64, device="cuda" if dist.get_backend() == "nccl" else "cpu")


def agree(elapsed_s: float, stop: bool) -> tuple[float, bool]:
    """The ranks' common training clock (the slowest rank's) and whether any rank stops."""
    dist = _group()
    if dist is None:
        return elapsed_s, stop
    flags = _numbers([elapsed_s, 1.0 if stop else 0.0])
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return float(flags[0]), bool(flags[1] > 0)


def gather_numbers(values: list[float]) -> list[list[float]]:
    """Every rank's ``values`` (same length on each), on every rank."""
    dist = _group()
    if dist is None:
        return [values]
    mine = _numbers(values)
    every = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(every, mine)
    return [t.cpu().tolist() for t in every]


def average_gradients(parameters: Any) -> None:
    """Average the gradients of ``parameters`` over the ranks (for modules outside the DDP wrapper: the
    discriminators of adversarial terms)."""
    dist = _group()
    if dist is None:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rank_environ(rank: int, world_size: int, port: int, threads: int) -> dict[str, str]:
    """The environment torchrun gives rank ``rank`` of ``world_size`` on this machine."""
    return {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size),
            "LOCAL_WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": str(threads)}


@contextlib.contextmanager
def local_ranks(nproc: int, params: dict[str, Any], workspace: str) -> Iterator[DistEnv]:
    """Start ranks 1..nproc-1 of a ``train.renderer`` job on this machine; this process is rank 0 in the block.

    Yields rank 0's :class:`DistEnv` with the environment set (as torchrun would), restores it after, and stops
    children that are still running (rank 0 failed). A child that failed is reported by :func:`check_children`.
    """
    port = free_port()
    threads = max(1, (os.cpu_count() or 1) // nproc)
    spec = json.dumps({"params": params, "workspace": workspace})
    children: list[subprocess.Popen[bytes]] = []
    saved = {key: os.environ.get(key) for key in rank_environ(0, nproc, port, threads)}
    saved_threads = torch.get_num_threads()
    try:
        for rank in range(1, nproc):
            env = {**os.environ, **rank_environ(rank, nproc, port, threads)}
            child = subprocess.Popen([sys.executable, "-m", "core.renderers.distributed"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            assert child.stdin is not None
            child.stdin.write(spec.encode())
            child.stdin.close()
            children.append(child)
        os.environ.update(rank_environ(0, nproc, port, threads))
        torch.set_num_threads(threads)
        try:
            yield DistEnv(0, nproc, 0)
        except RuntimeError:  # a collective failed: most often another rank died; say why it did
            for child in children:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=5)
            check_children(children)
            raise
        check_children(children)
    finally:
        for child in children:
            if child.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=30)
            if child.poll() is None:
                child.kill()
                child.wait()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        torch.set_num_threads(saved_threads)


def check_children(children: list[subprocess.Popen[bytes]]) -> None:
    """Wait for the other ranks; raise when one failed (with the end of what it printed)."""
    for rank, child in enumerate(children, start=1):
        try:
            child.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            raise RuntimeError(f"training rank {rank} did not finish") from None
        if child.returncode != 0:
            tail = (child.stderr.read().decode(errors="replace") if child.stderr else "")[-1500:]
            raise RuntimeError(f"training rank {rank} failed (exit code {child.returncode}): {tail.strip()}")


def follower_main() -> int:
    """Entry of ranks 1..N-1 started by :func:`local_ranks`: the job's params as JSON on stdin."""
    from core.jobs.context import JobCancelled, JobFailed
    from core.renderers.jobs import train_follower

    spec = json.loads(sys.stdin.read())
    try:
        train_follower(spec["params"], spec["workspace"], DistEnv.from_environ())
    except JobCancelled:
        return 3
    except JobFailed as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(follower_main())
