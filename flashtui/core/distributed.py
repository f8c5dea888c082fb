"""One rank of a sweep under torchrun: who it is, and which cells of the plan are its own.

Standard library only: the CLI reads torchrun's environment here (it never imports torch)
and the worker splits the plan with the same :func:`share`, so every rank agrees on who
runs what without talking. The process group itself lives in ``flashtui.engine.distributed``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

from flashtui.core.spec import CellKey
from flashtui.errors import UsageError

# torchrun sets these for each process it starts (RANK and WORLD_SIZE global, LOCAL_RANK on
# the node); MASTER_ADDR:MASTER_PORT is its rendezvous store, which only the worker's
# process group connects to.
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")

# The CLI sets this in its worker's environment: the worker makes its CUDA context on
# cuda:N from the start (not on cuda:0, where rank 0 measures).
CUDA_DEVICE_ENV = "FLASHTUI_CUDA_DEVICE"

# How long rank 0 waits for a rank's next finished cell (--dist-timeout), and the least
# that joining and the plan check wait for the slowest rank.
DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class RankInfo:
    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def is_leader(self) -> bool:
        """Rank 0 owns the session; the others hand it their cells."""
        return self.rank == 0

    def to_request(self) -> dict[str, Any]:
        """The ``RunSweep.distributed`` payload."""
        return asdict(self)

    @classmethod
    def from_request(cls, data: Mapping[str, Any]) -> "RankInfo":
        return cls(rank=int(data["rank"]), world_size=int(data["world_size"]),
                   local_rank=int(data["local_rank"]), master_addr=str(data["master_addr"]),
                   master_port=int(data["master_port"]),
                   timeout_s=float(data.get("timeout_s") or DEFAULT_TIMEOUT_S))


def from_env(environ: Mapping[str, str], timeout_s: float = DEFAULT_TIMEOUT_S) -> RankInfo:
    """torchrun's variables as a RankInfo; a UsageError naming what is missing or wrong."""
    missing = [name for name in ENV_VARS if not environ.get(name, "").strip()]
    if missing:
        raise UsageError(f"--distributed needs torchrun's environment ({', '.join(missing)} not set); "
                         "run it as: torchrun --nproc-per-node N -m flashtui bench --distributed ...")
    numbers = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"):
        text = environ[name].strip()
        try:
            numbers[name] = int(text)
        except ValueError:
            raise UsageError(f"--distributed: {name} must be an integer, got {text!r}") from None
    rank, world_size, local_rank, port = (numbers[n] for n in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"))
    if world_size < 1 or not 0 <= rank < world_size:
        raise UsageError(f"--distributed: RANK {rank} is not within WORLD_SIZE {world_size}")
    if local_rank < 0:
        raise UsageError(f"--distributed: LOCAL_RANK must be >= 0, got {local_rank}")
    if not 0 < port < 65536:
        raise UsageError(f"--distributed: MASTER_PORT must be a port number, got {port}")
    return RankInfo(rank, world_size, local_rank, environ["MASTER_ADDR"].strip(), port, timeout_s)


def share(cells: Sequence[CellKey], rank: int, world_size: int) -> list[int]:
    """Indices (into ``cells``) of the cells ``rank`` runs.

    Whole (dtype, seq) groups go round-robin to the ranks, not single cells: a group's
    backends then run on one device, so ``speedup_vs_standard`` compares kernels on the
    same GPU and the fp64 oracle is computed once per group (as in a one-worker sweep).
    With fewer groups than ranks, the extra ranks have nothing to run.
    """
    groups: dict[tuple[str, int], int] = {}
    mine = []
    for index, key in enumerate(cells):
        group = groups.setdefault((key.dtype, key.seq), len(groups))
        if group % world_size == rank:
            mine.append(index)
    return mine


def owner(cells: Sequence[CellKey], world_size: int) -> list[int]:
    """The rank that runs each cell of ``cells`` (the inverse of :func:`share`)."""
    ranks = [0] * len(cells)
    for rank in range(world_size):
        for index in share(cells, rank, world_size):
            ranks[index] = rank
    return ranks
