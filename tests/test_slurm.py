"""SLURM without torchrun: ``srun python train.py`` joins the job from SLURM's variables.

- the host-list parser against hand-expanded SLURM host lists;
- the mapping SLURM_PROCID -> rank, SLURM_LOCALID -> local rank, SLURM_NTASKS
  -> world size, the first host -> rendezvous address, a port from the job id
  (MASTER_PORT / MASTER_ADDR override), torchrun's variables first;
- a real two-task job faked with SLURM's variables only (two processes on
  this machine, gloo) joins one process group through
  ``semiclip.distributed.init_process_group()``.
"""

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from semiclip._nn.training._cluster import cluster_env, expand_hostlist, local_rank

ROOT = Path(__file__).resolve().parents[1]
_SLURM_AND_TORCHRUN = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                       "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS", "SLURM_NPROCS",
                       "SLURM_JOB_NODELIST", "SLURM_NODELIST", "SLURM_JOB_ID")


@pytest.fixture
def clean_env(monkeypatch):
    for name in _SLURM_AND_TORCHRUN:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("text, hosts", [
    ("gpu5", ["gpu5"]),
    ("node[01-03,07],gpu5", ["node01", "node02", "node03", "node07", "gpu5"]),
    ("gpu5,node[1-2]", ["gpu5", "node1", "node2"]),
    ("n[8-11]", ["n8", "n9", "n10", "n11"]),
    ("c[098-101]", ["c098", "c099", "c100", "c101"]),
    ("rack[1-2]-n[01-02]", ["rack1-n01", "rack1-n02", "rack2-n01", "rack2-n02"]),
    ("a[3],b[0-1].cluster", ["a3", "b0.cluster", "b1.cluster"]),
])
def test_hostlist_expands_like_slurm(text, hosts):
    assert expand_hostlist(text) == hosts


@pytest.mark.parametrize("text, match", [
    ("node[01-03", r"'\[' without '\]'"),
    ("node[a-c]", "'a-c' in \\[a-c\\] is not a number or a range"),
    ("node[05-02]", "range '05-02' ends below its start"),
    ("", "no host"),
    ("a,,b", "'' is not a host name"),
])
def test_hostlist_rejects_malformed_lists(text, match):
    with pytest.raises(ValueError, match=match):
        expand_hostlist(text)


def test_slurm_variables_map_to_the_rank(clean_env):
    clean_env.setenv("SLURM_PROCID", "5")
    clean_env.setenv("SLURM_LOCALID", "1")
    clean_env.setenv("SLURM_NTASKS", "8")
    clean_env.setenv("SLURM_JOB_NODELIST", "gpu[07-08,10],login1")
    clean_env.setenv("SLURM_JOB_ID", "4242424")
    env = cluster_env()
    assert (env.rank, env.world_size, env.local_rank) == (5, 8, 1)
    assert env.master_addr == "gpu07"
    assert env.master_port == 20000 + 4242424 % 10000 == 22424  # the same on every task
    assert env.init_method == "tcp://gpu07:22424"
    assert env.source == "slurm"
    assert local_rank() == 1
    clean_env.setenv("MASTER_PORT", "31337")
    clean_env.setenv("MASTER_ADDR", "10.0.0.2")
    assert cluster_env().init_method == "tcp://10.0.0.2:31337"


def test_slurm_nodelist_and_nprocs_fallbacks(clean_env):
    clean_env.setenv("SLURM_PROCID", "0")
    clean_env.setenv("SLURM_NPROCS", "2")
    clean_env.setenv("SLURM_NODELIST", "cn[3-4]")
    env = cluster_env()
    assert (env.rank, env.world_size, env.local_rank, env.master_addr, env.master_port) == (
        0, 2, None, "cn3", 20000)


def test_torchrun_variables_come_first(clean_env):
    for name, value in dict(SLURM_PROCID="3", SLURM_NTASKS="4", SLURM_LOCALID="3",
                            SLURM_JOB_NODELIST="n[1-2]", RANK="1", WORLD_SIZE="2",
                            LOCAL_RANK="0", MASTER_ADDR="head", MASTER_PORT="29500").items():
        clean_env.setenv(name, value)
    env = cluster_env()
    assert (env.rank, env.world_size, env.local_rank, env.master_addr, env.master_port,
            env.source) == (1, 2, 0, "head", 29500, "torchrun")
    assert local_rank() == 0


def test_no_launcher_and_allocation_without_srun(clean_env):
    assert cluster_env() is None and local_rank() is None
    # inside `salloc`/`sbatch` but outside `srun`: no task id, so not a rank
    clean_env.setenv("SLURM_NTASKS", "4")
    clean_env.setenv("SLURM_JOB_NODELIST", "n[1-2]")
    assert cluster_env() is None


@pytest.mark.parametrize("name, value, match", [
    ("SLURM_PROCID", "x", "SLURM_PROCID must be an integer; got 'x'"),
    ("SLURM_PROCID", "4", "SLURM_PROCID=4 is not a rank of SLURM_NTASKS=4"),
    ("SLURM_JOB_NODELIST", "n[1-", "SLURM_JOB_NODELIST: bad host list 'n\\[1-'.*MASTER_ADDR"),
])
def test_bad_slurm_variables_are_named(clean_env, name, value, match):
    base = dict(SLURM_PROCID="0", SLURM_NTASKS="4", SLURM_JOB_NODELIST="n[1-2]")
    base[name] = value
    for key, val in base.items():
        clean_env.setenv(key, val)
    with pytest.raises(ValueError, match=match):
        cluster_env()


def test_ddp_error_names_srun(clean_env):
    from semiclip import SemiClippedTransformer
    from semiclip.datasets import make_weakly_paired

    d = make_weakly_paired(n_perturbations=10, n_genes=8, random_state=0)
    with pytest.raises(ValueError, match="srun python script.py"):
        SemiClippedTransformer(strategy="ddp", control_label="control").fit(
            d.X, d.y, image_bank=d.image_bank)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # a real 2-process job (~3 s)
@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
def test_two_srun_tasks_join_one_group(clean_env, tmp_path):
    """What ``srun --ntasks=2 python train.py`` gives each task, and nothing of torchrun."""
    script = textwrap.dedent("""
        import torch
        from semiclip import distributed
        distributed.init_process_group("gloo", timeout=60)
        t = torch.tensor([float(distributed.rank() + 1)])
        torch.distributed.all_reduce(t)
        print(distributed.rank(), distributed.world_size(), int(t.item()), flush=True)
        torch.distributed.destroy_process_group()
    """)
    port = _free_port()
    procs = []
    for task in range(2):
        env = {k: v for k, v in os.environ.items() if k not in _SLURM_AND_TORCHRUN}
        env.update(SLURM_PROCID=str(task), SLURM_LOCALID=str(task), SLURM_NTASKS="2",
                   SLURM_JOB_NODELIST="localhost,node[02-03]", SLURM_JOB_ID="1",
                   MASTER_PORT=str(port), OMP_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
        procs.append(subprocess.Popen([sys.executable, "-c", script], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    try:
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    assert sorted(o.split() for o, _ in outs) == [["0", "2", "3"], ["1", "2", "3"]]
