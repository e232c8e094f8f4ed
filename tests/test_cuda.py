"""GPU checks: the same code paths as on the CPU, on CUDA with AMP (skipped without CUDA).

Run on a machine with an NVIDIA GPU (``make test-gpu``, or without the project's virtual
environment ``PYTHONPATH=src python -m pytest tests/test_cuda.py -rs``); the two-GPU NCCL
run needs two devices. Everything here also has a CPU counterpart in test_models.py /
test_train.py; these tests check that CUDA, fp16 / bf16 autocast and the GradScaler do
not change what the CPU tests establish.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

import sain
from sain.models import SAIN
from sain.models.subnet import DenseBlock

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

from test_train import _free_port, data, read_log, sain_train, tiny_config, write_config  # noqa: E402  (the tiny data and configs of the CPU training tests)

__all__ = ["data"]  # the fixture, re-used


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_dense_block_fused_matches_concat_under_autocast(dtype):
    torch.manual_seed(0)
    block = DenseBlock(9, 3).cuda().to(memory_format=torch.channels_last)
    for p in block.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    x0 = torch.randn(4, 9, 24, 20, device="cuda").contiguous(memory_format=torch.channels_last)
    res = []
    for fused in (True, False):
        block.fused = fused
        block.zero_grad()
        x = x0.clone().requires_grad_()
        with torch.autocast("cuda", dtype=dtype):
            y = block(x)
        assert y.dtype == dtype
        y.float().pow(2).sum().backward()
        res.append((y.float(), x.grad, [p.grad.clone() for p in block.parameters()]))
    block.fused = True
    (y1, gx1, gp1), (y2, gx2, gp2) = res
    torch.testing.assert_close(y1, y2, rtol=0.05, atol=0.05)
    assert (gx1 - gx2).norm() / gx2.norm() < 0.03
    for a, b in zip(gp1, gp2):
        assert a.dtype == torch.float32
        assert (a - b).norm() / b.norm() < 0.03


def test_sain_is_invertible_on_cuda():
    torch.manual_seed(0)
    model = SAIN(2).cuda().eval()
    for p in model.parameters():
        p.data.add_(0.01 * torch.randn_like(p))
    x = torch.rand(2, 3, 32, 32, device="cuda")
    with torch.no_grad():
        y, _ = model(x)
        x_back, _ = model.inverse(y)
    assert (x_back - x).abs().max() < 1e-4


def test_cuda_matches_cpu_in_fp32():
    torch.manual_seed(0)
    model = SAIN(2, e_blocks=2, v_blocks=1)
    for p in model.parameters():
        p.data.add_(0.01 * torch.randn_like(p))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        y_cpu, lr_cpu = model(x)
        y_gpu, lr_gpu = model.cuda()(x.cuda())
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(lr_gpu.cpu(), lr_cpu, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_train_on_cuda_with_amp_then_resume(data, tmp_path, amp):
    """`sain train --device cuda` with autocast (fp16 with the GradScaler): finite losses
    that go down, a checkpoint that resumes, final weights that load."""
    cfg = write_config(
        tmp_path / "cuda.toml",
        tiny_config(
            data, optim={"iters": 12, "milestones": [8], "lr": 4e-4}, run={"amp": amp, "val_every": 6, "ckpt_every": 6}
        ),
    )
    out = tmp_path / "run"
    assert sain_train(cfg, "--out", out, "--device", "cuda", "--iters", "6") == 0
    assert sain_train(cfg, "--out", out, "--device", "cuda", "--resume") == 0
    log = read_log(out)
    steps = [int(r["step"]) for r in log]
    assert steps[-1] == 12 and sorted(set(steps)) == steps
    losses = [float(r["loss"]) for r in log]
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-3:]) < sum(losses[:3])
    model = sain.load_checkpoint(out / "model.safetensors")
    assert json.loads(model.metadata["iterations"]) == 12
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_two_gpu_nccl_run(data, tmp_path):
    cfg = write_config(
        tmp_path / "ddp.toml",
        tiny_config(data, optim={"iters": 3, "milestones": [2]}, run={"val_every": 100, "amp": "bf16"}),
    )
    out = tmp_path / "ddp"
    port = _free_port()
    env = {**os.environ, "MASTER_PORT": str(port), "MASTER_ADDR": "127.0.0.1", "SAIN_DUMP_RANK_WEIGHTS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(port),
        "-m",
        "sain",
        "train",
        str(cfg),
        "--out",
        str(out),
        "--device",
        "cuda",
        "--no-progress",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    assert r0.keys() == r1.keys()
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
