#!/usr/bin/python3
"""PyTorch side of the issue 19 comparison (docs/benchmarks.md, "PyTorch on this machine").

Defines, in PyTorch, the networks `flowact bench` times, with the same shapes, the same
operations and the same FLOP counts:

  A   reference network A (expert/nn/refnet): concat(x 50x7, 64 sinusoidal time features,
      condition 519) -> 1024 -> 1024 -> 1024 -> 350, SiLU.
  B   reference network B: pre-LN transformer, width 256, 4 layers, 4 heads, MLP x4 (tanh GELU),
      50 action tokens with a position embedding and the time embedding added to each,
      self-attention over them, cross-attention to 16 condition tokens projected from the
      519-vector (keys and values computed once per chunk), final LN and Linear(256, 7).
  train   one optimizer step of `flowact train`'s default expert as expert/train's
      BenchmarkTrainStep runs it: the FiLM MLP (hidden 256, 3 blocks, time MLP 64 -> 128 -> 128,
      condition 64 pooled + 7 state -> 256, mask channel), batch 128, H = 32, D = 7, 16 x 64
      embeddings, conditional flow matching with CondOT and uniform t, masked squared error,
      gradient norm, Adam (beta 0.9, 0.999, eps 1e-8, lr 1e-3), moving average 0.999.
  train6  the same with 6 blocks, the shipped checkpoint's depth (`flowact train --layers 6`).

A chunk is Bind (B: the condition tokens' keys and values) plus 10 Euler steps from noise at
batch 1, as in refnet.Chunk. Inference runs a module traced (torch.jit.trace) and frozen
(torch.jit.freeze) under torch.inference_mode, like the issue's PyTorch figures.

Prints one JSON object: per case the median, minimum and 99th percentile of the wall time, the
process CPU time per chunk or step (time.process_time over the timed loop), the count, and
the analytic FLOPs. One thread unless --threads says otherwise. Needs Debian's python3-torch
(not installed by scripts/test; the comparison is not part of CI).

    /usr/bin/python3 scripts/torchref.py --duration 5 --threads 1
"""

import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

H, D, COND, TIMEF = 50, 7, 519, 64
MLP_W = 1024
W, LAYERS, HEADS, RATIO, CTOK = 256, 4, 4, 4, 16
STEPS = 10


def time_features(t, n=TIMEF):
    """expert/nn.TimeFeatures: n/2 sines then n/2 cosines, periods geometric from 4e-3 to 4.
    t is a tensor of shape (B, 1)."""
    half = n // 2
    k = torch.arange(half, dtype=torch.float64)
    period = 4e-3 * (4.0 / 4e-3) ** (k / (half - 1))
    a = 2 * math.pi * t.double() / period
    return torch.cat([torch.sin(a), torch.cos(a)], dim=-1).float()


class RefA(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(H * D + TIMEF + COND, MLP_W)
        self.l2 = nn.Linear(MLP_W, MLP_W)
        self.l3 = nn.Linear(MLP_W, MLP_W)
        self.l4 = nn.Linear(MLP_W, H * D)

    def forward(self, x, tf, c):
        h = torch.cat([x, tf, c], dim=-1)
        h = F.silu(self.l1(h))
        h = F.silu(self.l2(h))
        h = F.silu(self.l3(h))
        return self.l4(h)

    @staticmethod
    def flops():
        dims = [H * D + TIMEF + COND, MLP_W, MLP_W, MLP_W, H * D]
        return 0, sum(2 * a * b for a, b in zip(dims, dims[1:]))


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(W), nn.LayerNorm(W), nn.LayerNorm(W)
        self.qkv, self.o = nn.Linear(W, 3 * W), nn.Linear(W, W)
        self.cq, self.ck, self.cv, self.co = nn.Linear(W, W), nn.Linear(W, W), nn.Linear(W, W), nn.Linear(W, W)
        self.fc1, self.fc2 = nn.Linear(W, RATIO * W), nn.Linear(RATIO * W, W)


def attend(q, k, v):
    """q (n, W), k and v (m, W): multi-head softmax attention, heads side by side."""
    dh = W // HEADS
    q = q.view(-1, HEADS, dh).transpose(0, 1)
    k = k.view(-1, HEADS, dh).transpose(0, 1)
    v = v.view(-1, HEADS, dh).transpose(0, 1)
    s = torch.matmul(q, k.transpose(1, 2)) * (1.0 / math.sqrt(dh))
    a = torch.matmul(torch.softmax(s, dim=-1), v)
    return a.transpose(0, 1).reshape(-1, W)


class RefB(nn.Module):
    def __init__(self):
        super().__init__()
        self.tfc1, self.tfc2 = nn.Linear(TIMEF, W), nn.Linear(W, W)
        self.act = nn.Linear(D, W)
        self.cond = nn.Linear(COND, CTOK * W)
        self.pos = nn.Parameter(0.02 * torch.randn(H, W))
        self.layers = nn.ModuleList([Layer() for _ in range(LAYERS)])
        self.lnf = nn.LayerNorm(W)
        self.out = nn.Linear(W, D)

    def forward(self, x, tf, ck, cv):
        """x (H, D), tf (1, TIMEF), ck and cv (LAYERS, CTOK, W) from Bind."""
        temb = self.tfc2(F.silu(self.tfc1(tf)))
        h = self.pos + temb + self.act(x)
        for i, ly in enumerate(self.layers):
            u = ly.ln1(h)
            q, k, v = ly.qkv(u).split(W, dim=-1)
            h = h + ly.o(attend(q, k, v))
            u = ly.ln2(h)
            h = h + ly.co(attend(ly.cq(u), ck[i], cv[i]))
            u = ly.ln3(h)
            h = h + ly.fc2(F.gelu(ly.fc1(u), approximate="tanh"))
        return self.out(self.lnf(h))


class BindB(nn.Module):
    """The once-per-chunk work of B: condition tokens, then each layer's cross keys and values."""

    def __init__(self, b):
        super().__init__()
        self.b = b

    def forward(self, c):
        tok = self.b.cond(c).view(CTOK, W)
        ck = torch.stack([ly.ck(tok) for ly in self.b.layers])
        cv = torch.stack([ly.cv(tok) for ly in self.b.layers])
        return ck, cv


def flops_b():
    """refnet.Transformer.FLOPs."""
    w, h, tk = W, H, CTOK
    bind = 2 * COND * tk * w + LAYERS * 2 * 2 * tk * w * w
    per_layer = (2 * h * w * 3 * w + 2 * 2 * h * h * w + 2 * h * w * w
                 + 2 * h * w * w + 2 * 2 * h * tk * w + 2 * h * w * w
                 + 2 * 2 * h * w * RATIO * w)
    velocity = 2 * (TIMEF * w + w * w) + 2 * h * D * w + LAYERS * per_layer + 2 * h * w * D
    return bind, velocity


def freeze(module, *example):
    module.eval()
    with torch.inference_mode():
        traced = torch.jit.trace(module, example)
    return torch.jit.freeze(traced)


def measure(fn, duration, min_reps=5, warmup=3):
    for _ in range(warmup):
        fn()
    ms = []
    cpu0 = time.process_time()
    start = time.perf_counter()
    while len(ms) < min_reps or time.perf_counter() - start < duration:
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    cpu = time.process_time() - cpu0
    ms.sort()
    return {
        "reps": len(ms),
        "ms_median": ms[len(ms) // 2],
        "ms_min": ms[0],
        "ms_p99": ms[min(len(ms) - 1, int(math.ceil(0.99 * len(ms))) - 1)],
        "cpu_ms": cpu * 1e3 / len(ms),
    }


def bench_a(duration):
    net = RefA()
    c = torch.randn(1, COND)
    fx = freeze(net, torch.randn(1, H * D), time_features(torch.zeros(1, 1)), c)
    tfs = [time_features(torch.full((1, 1), k / STEPS)) for k in range(STEPS)]

    def chunk():
        with torch.inference_mode():
            x = torch.randn(1, H * D)
            for k in range(STEPS):
                x = x + fx(x, tfs[k], c) / STEPS
        return x

    r = measure(chunk, duration)
    bind, vel = RefA.flops()
    r["mflop"] = (bind + STEPS * vel) / 1e6
    r["params"] = sum(p.numel() for p in net.parameters())
    return r


def bench_b(duration):
    net = RefB()
    c = torch.randn(COND)
    fbind = freeze(BindB(net), c)
    with torch.inference_mode():
        ck, cv = fbind(c)
    fx = freeze(net, torch.randn(H, D), time_features(torch.zeros(1, 1)), ck, cv)
    tfs = [time_features(torch.full((1, 1), k / STEPS)) for k in range(STEPS)]

    def chunk():
        with torch.inference_mode():
            k_, v_ = fbind(c)
            x = torch.randn(H, D)
            for k in range(STEPS):
                x = x + fx(x, tfs[k], k_, v_) / STEPS
        return x

    r = measure(chunk, duration)
    bind, vel = flops_b()
    r["mflop"] = (bind + STEPS * vel) / 1e6
    r["params"] = sum(p.numel() for p in net.parameters())
    return r


class ExpertMLP(nn.Module):
    """expert/nn's MLP expert as expert/train's graph computes it (LayerNorm eps 1e-6, no affine;
    FiLM u = LN(h)·(1 + scale) + shift; the FiLM maps start at zero, the rest N(0, 1/fan in))."""

    def __init__(self, h=32, d=7, embed=64, state=7, hidden=256, layers=3, tfeat=64, twidth=128):
        super().__init__()
        self.h, self.d, self.tfeat = h, d, tfeat
        self.tfc1, self.tfc2 = nn.Linear(tfeat, twidth), nn.Linear(twidth, twidth)
        self.cond = nn.Linear(embed + state, hidden)
        self.inp = nn.Linear(h * d + h, hidden)
        self.scale_t = nn.ModuleList([nn.Linear(twidth, hidden, bias=False) for _ in range(layers)])
        self.scale_c = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(layers)])
        self.shift_t = nn.ModuleList([nn.Linear(twidth, hidden, bias=False) for _ in range(layers)])
        self.shift_c = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(layers)])
        self.fc = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(layers)])
        self.out = nn.Linear(hidden, h * d)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=1 / math.sqrt(m.in_features))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for group in (self.scale_t, self.scale_c, self.shift_t, self.shift_c):
            for m in group:
                nn.init.zeros_(m.weight)

    def forward(self, xin, tf, cin):
        te = F.silu(self.tfc2(F.silu(self.tfc1(tf))))
        ce = F.silu(self.cond(cin))
        h = self.inp(xin)
        for st, sc, ht, hc, fc in zip(self.scale_t, self.scale_c, self.shift_t, self.shift_c, self.fc):
            scale = st(te) + sc(ce)
            shift = ht(te) + hc(ce)
            u = F.layer_norm(h, (h.shape[-1],), eps=1e-6)
            h = h + fc(F.silu(u * (1 + scale) + shift))
        return self.out(F.layer_norm(h, (h.shape[-1],), eps=1e-6))


def bench_train(duration, batch=128, h=32, d=7, tokens=16, embed=64, state=7, layers=3):
    torch.manual_seed(1)
    net = ExpertMLP(h=h, d=d, embed=embed, state=state, layers=layers)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    ema = [p.detach().clone() for p in net.parameters()]

    def step():
        # A batch of the stand-in source (expert/train's randSource): normal actions,
        # embeddings and states; CondOT flow matching at uniform t, no committed prefix.
        actions = torch.randn(batch, h * d)
        emb = torch.randn(batch, tokens, embed)
        st = torch.randn(batch, state)
        t = torch.rand(batch, 1)
        x0 = torch.randn(batch, h * d)
        x = t * actions + (1 - t) * x0
        target = actions - x0
        xin = torch.cat([x, torch.zeros(batch, h)], dim=1)
        cin = torch.cat([emb.mean(dim=1), st], dim=1)
        tf = time_features(t)
        v = net(xin, tf, cin)
        loss = ((v - target) ** 2).sum() / target.numel()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), float("inf"))  # the norm, as flowact logs it
        opt.step()
        with torch.no_grad():
            torch._foreach_mul_(ema, 0.999)
            torch._foreach_add_(ema, [p.detach() for p in net.parameters()], alpha=0.001)
        return loss

    r = measure(step, duration, min_reps=10)
    r["steps_per_s"] = 1e3 / r["ms_median"]
    r["params"] = sum(p.numel() for p in net.parameters())
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=5.0, help="least seconds timed per case")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--cases", default="A,B,train,train6", help="comma-separated: A, B, train, train6")
    a = ap.parse_args()
    if a.threads < 1:
        ap.error("--threads %d: want at least 1" % a.threads)
    cases = [c for c in a.cases.split(",") if c]
    for c in cases:
        if c not in ("A", "B", "train", "train6"):
            ap.error("--cases: unknown case %r (want A, B, train, train6)" % c)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    out = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": torch.__config__.show().count("BLAS_INFO") and
        [l.strip() for l in torch.__config__.show().splitlines() if "BLAS_INFO" in l][0] or "",
        "load_average": list(os.getloadavg()),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    runs = {"A": bench_a, "B": bench_b, "train": bench_train,
            "train6": lambda duration: bench_train(duration, layers=6)}
    for c in cases:
        out[c] = runs[c](a.duration)
    out["load_average_end"] = list(os.getloadavg())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
