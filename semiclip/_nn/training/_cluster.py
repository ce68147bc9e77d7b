"""Where this process sits in a DDP job: torchrun's variables, or SLURM's when torchrun is absent.

torchrun describes a rank with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``. ``srun python train.py`` starts one
process per task without them; SLURM gives instead ``SLURM_PROCID`` (the
rank), ``SLURM_LOCALID`` (the rank on its node), ``SLURM_NTASKS`` (the world
size) and the allocation's hosts (``SLURM_JOB_NODELIST``, compressed:
``node[01-03,07],gpu5``). The first host serves the rendezvous, on a port
derived from the job id (the same on every task; ``MASTER_PORT`` and
``MASTER_ADDR`` override). Reading the environment needs no ``scontrol``.
"""

import os
import re

__all__ = ["ClusterEnv", "cluster_env", "expand_hostlist", "local_rank"]

_TORCHRUN = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
PORT_BASE, PORT_SPAN = 20000, 10000
"""SLURM jobs without ``MASTER_PORT`` use ``PORT_BASE + job id % PORT_SPAN`` (below the
Linux ephemeral range, so that two jobs sharing a node rarely collide)."""


class ClusterEnv(tuple):
    """``(rank, world_size, local_rank, master_addr, master_port, source)``."""

    __slots__ = ()

    def __new__(cls, rank, world_size, local_rank, master_addr, master_port, source):
        return super().__new__(cls, (rank, world_size, local_rank, master_addr, master_port,
                                     source))

    rank = property(lambda self: self[0])
    world_size = property(lambda self: self[1])
    local_rank = property(lambda self: self[2])
    master_addr = property(lambda self: self[3])
    master_port = property(lambda self: self[4])
    source = property(lambda self: self[5])

    @property
    def init_method(self):
        return f"tcp://{self.master_addr}:{self.master_port}"


def _split_top(text):
    """Split at the commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def _expand_one(host, text):
    opening = host.find("[")
    if opening < 0:
        if "]" in host or not host:
            raise ValueError(f"bad host list {text!r}: {host!r} is not a host name")
        return [host]
    closing = host.find("]", opening)
    if closing < 0:
        raise ValueError(f"bad host list {text!r}: '[' without ']' in {host!r}")
    prefix, body, rest = host[:opening], host[opening + 1:closing], host[closing + 1:]
    tails = _expand_one(rest, text) if rest else [""]
    names = []
    for item in body.split(","):
        match = _RANGE.match(item.strip())
        if match is None:
            raise ValueError(
                f"bad host list {text!r}: {item!r} in [{body}] is not a number or a range "
                "like 01-03"
            )
        low, high = match.group(1), match.group(2)
        if high is None:
            names.append(low)
            continue
        if int(high) < int(low):
            raise ValueError(f"bad host list {text!r}: range {item!r} ends below its start")
        names.extend(str(i).zfill(len(low)) for i in range(int(low), int(high) + 1))
    return [prefix + name + tail for name in names for tail in tails]


def expand_hostlist(text):
    """The host names of a SLURM host list, in order: ``"node[01-03,07],gpu5"`` ->
    ``["node01", "node02", "node03", "node07", "gpu5"]`` (zero padding kept; several
    bracket groups in one name expand to every combination)."""
    text = text.strip()
    if not text:
        raise ValueError("bad host list '': no host")
    hosts = []
    for part in _split_top(text):
        hosts.extend(_expand_one(part.strip(), text))
    return hosts


def _integer(environ, name):
    value = environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer; got {value!r}.") from None


def cluster_env(environ=None):
    """This rank's place in the job, from torchrun's variables or else SLURM's; None outside
    both (or inside a SLURM allocation but not in a task of ``srun``)."""
    environ = os.environ if environ is None else environ
    if all(k in environ for k in _TORCHRUN):
        return ClusterEnv(
            _integer(environ, "RANK"), _integer(environ, "WORLD_SIZE"),
            _integer(environ, "LOCAL_RANK") if "LOCAL_RANK" in environ else None,
            environ["MASTER_ADDR"], _integer(environ, "MASTER_PORT"), "torchrun",
        )
    nodes = environ.get("SLURM_JOB_NODELIST", environ.get("SLURM_NODELIST"))
    ntasks = "SLURM_NTASKS" if "SLURM_NTASKS" in environ else "SLURM_NPROCS"
    if "SLURM_PROCID" not in environ or ntasks not in environ or nodes is None:
        return None
    rank, world = _integer(environ, "SLURM_PROCID"), _integer(environ, ntasks)
    if not 0 <= rank < world:
        raise ValueError(f"SLURM_PROCID={rank} is not a rank of {ntasks}={world}.")
    local = _integer(environ, "SLURM_LOCALID") if "SLURM_LOCALID" in environ else None
    if "MASTER_ADDR" in environ:
        addr = environ["MASTER_ADDR"]
    else:
        try:
            addr = expand_hostlist(nodes)[0]
        except ValueError as exc:
            raise ValueError(f"SLURM_JOB_NODELIST: {exc}; set MASTER_ADDR to the first "
                             "host of the job.") from None
    if "MASTER_PORT" in environ:
        port = _integer(environ, "MASTER_PORT")
    else:
        job = _integer(environ, "SLURM_JOB_ID") if "SLURM_JOB_ID" in environ else 0
        port = PORT_BASE + job % PORT_SPAN
    return ClusterEnv(rank, world, local, addr, port, "slurm")


def local_rank(environ=None):
    """This rank's index on its node (``LOCAL_RANK``, else ``SLURM_LOCALID``); None if unknown."""
    environ = os.environ if environ is None else environ
    for name in ("LOCAL_RANK", "SLURM_LOCALID"):
        if name in environ:
            return _integer(environ, name)
    return None
