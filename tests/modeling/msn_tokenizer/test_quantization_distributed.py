"""The EMA codebook under torch.distributed (gloo, 2 CPU processes) equals one process seeing all data."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from soundlm.modeling.msn_tokenizer import VectorQuantizer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _make(threshold: float) -> VectorQuantizer:
    torch.manual_seed(0)
    quantizer = VectorQuantizer(8, 3, decay=0.9, dead_code_threshold=threshold)
    quantizer.reset_parameters()
    quantizer.ema_cluster_size.fill_(5.0)  # alive, so the EMA path (not restarts) is compared
    quantizer.ema_embed_sum.copy_(quantizer.codebook * 5.0)
    return quantizer.train()


def _worker(rank: int, port: int, scenarios: list, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    for index, (data, threshold) in enumerate(scenarios):
        torch.manual_seed(100 + rank)  # restart picks differ per rank unless broadcast
        quantizer = _make(threshold)
        quantizer(data[rank])
        torch.save({k: v.clone() for k, v in quantizer.state_dict().items()}, f"{out}.{index}.{rank}")
    dist.destroy_process_group()


def test_codebook_under_two_gloo_processes(tmp_path):
    torch.manual_seed(1)
    alive = torch.randn(2, 1, 20, 3)
    dead = torch.randn(2, 1, 20, 3) + 10.0
    out = str(tmp_path / "state")
    # scenario 0: codes alive, EMA statistics; scenario 1: threshold 100, every code restarted
    mp.spawn(_worker, args=(_free_port(), [(alive, 1.0), (dead, 100.0)], out), nprocs=2, join=True)

    rank0, rank1 = torch.load(f"{out}.0.0"), torch.load(f"{out}.0.1")
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    single = _make(1.0)
    single(torch.cat([alive[0], alive[1]], dim=1))
    assert torch.allclose(single.ema_cluster_size, rank0["ema_cluster_size"])
    assert torch.allclose(single.ema_embed_sum, rank0["ema_embed_sum"], atol=1e-6)

    rank0, rank1 = torch.load(f"{out}.1.0"), torch.load(f"{out}.1.1")
    assert torch.equal(rank0["codebook"], rank1["codebook"])
    for code in rank0["codebook"]:  # the restarted codes are vectors of rank 0's batch
        assert torch.isclose(dead[0, 0], code).all(-1).any()
