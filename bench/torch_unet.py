"""PyTorch CPU reference timing for the pytorch-ddpm UNet (same architecture as lib/models/unet.ts).

Written for this project (not copied). Run with Debian's interpreter, which has torch:
    /usr/bin/python3 bench/torch_unet.py --config tiny --threads 2 --repeats 5
or with the exact tfjs UNetConfig (field names of lib/models/unet.ts) as JSON:
    /usr/bin/python3 bench/torch_unet.py --config-json '{"imageSize":32,"inChannels":3,...}' 
Prints ONE JSON object on stdout: parameter count, forward img/s (batch --fwd-batch, no grad)
and training-step img/s (batch --train-batch: forward, MSE, backward, Adam), medians and spreads.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "tiny": dict(image_size=32, in_ch=3, ch=32, ch_mult=[1, 2, 2], num_res_blocks=1, attn=[16], dropout=0.1),
}


def from_tfjs(cfg):
    """Maps a tfjs UNetConfig (camelCase) to the constructor arguments of UNet."""
    return dict(image_size=cfg["imageSize"], in_ch=cfg["inChannels"], ch=cfg["ch"], ch_mult=list(cfg["chMult"]),
                num_res_blocks=cfg["numResBlocks"], attn=list(cfg["attnResolutions"]), dropout=cfg["dropout"])


def groups(c, max_groups=32):
    """Largest divisor of c that is <= max_groups (32 for multiples of 32, as GroupNorm(32, c))."""
    for g in range(min(max_groups, c), 0, -1):
        if c % g == 0:
            return g
    return 1


def norm(c):
    return nn.GroupNorm(groups(c), c)


def time_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / (half - 1))
    phase = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(phase), torch.cos(phase)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, tdim, dropout, attn):
        super().__init__()
        self.n1, self.c1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.t = nn.Linear(tdim, cout)
        self.n2, self.drop, self.c2 = norm(cout), nn.Dropout(dropout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.attn = Attention(cout) if attn else nn.Identity()

    def forward(self, x, temb):
        h = self.c1(F.silu(self.n1(x)))
        h = h + self.t(F.silu(temb))[:, :, None, None]
        h = self.c2(self.drop(F.silu(self.n2(h))))
        return self.attn(h + self.skip(x))


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n, self.qkv, self.proj = norm(c), nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.n(x)).reshape(b, 3, c, h * w).unbind(1)
        a = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(c), dim=-1)
        o = torch.bmm(a, v.transpose(1, 2)).transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj(o)


class UNet(nn.Module):
    def __init__(self, image_size, in_ch, ch, ch_mult, num_res_blocks, attn, dropout):
        super().__init__()
        tdim = 4 * ch
        self.ch = ch
        self.temb = nn.Sequential(nn.Linear(ch, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.head = nn.Conv2d(in_ch, ch, 3, padding=1)
        self.down = nn.ModuleList()
        skips, cur, res = [ch], ch, image_size
        for i, m in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(cur, ch * m, tdim, dropout, res in attn))
                cur = ch * m
                skips.append(cur)
            if i != len(ch_mult) - 1:
                self.down.append(nn.Conv2d(cur, cur, 3, stride=2, padding=1))
                skips.append(cur)
                res //= 2
        self.mid = nn.ModuleList([ResBlock(cur, cur, tdim, dropout, True), ResBlock(cur, cur, tdim, dropout, False)])
        self.up = nn.ModuleList()
        for i, m in reversed(list(enumerate(ch_mult))):
            for _ in range(num_res_blocks + 1):
                self.up.append(ResBlock(skips.pop() + cur, ch * m, tdim, dropout, res in attn))
                cur = ch * m
            if i != 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cur, cur, 3, padding=1)))
                res *= 2
        self.tail = nn.Sequential(norm(cur), nn.SiLU(), nn.Conv2d(cur, in_ch, 3, padding=1))

    def forward(self, x, t):
        temb = self.temb(time_embedding(t, self.ch))
        h = self.head(x)
        hs = [h]
        for layer in self.down:
            h = layer(h, temb) if isinstance(layer, ResBlock) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, temb)
        for layer in self.up:
            h = layer(torch.cat([h, hs.pop()], dim=1), temb) if isinstance(layer, ResBlock) else layer(h)
        return self.tail(h)


def timed(fn, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="tiny", choices=sorted(CONFIGS))
    p.add_argument("--config-json", default=None, help="tfjs UNetConfig as JSON (overrides --config)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--train-batch", type=int, default=32)
    p.add_argument("--fwd-batch", type=int, default=64)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = from_tfjs(json.loads(a.config_json)) if a.config_json else CONFIGS[a.config]
    model = UNet(**cfg)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    s, c = cfg["image_size"], cfg["in_ch"]
    xb, tb = torch.randn(a.train_batch, c, s, s), torch.randint(0, 1000, (a.train_batch,))
    target = torch.randn_like(xb)
    xf, tf_ = torch.randn(a.fwd_batch, c, s, s), torch.randint(0, 1000, (a.fwd_batch,))

    def step():
        model.train()
        opt.zero_grad(set_to_none=True)
        F.mse_loss(model(xb, tb), target).backward()
        opt.step()

    def forward():
        model.eval()
        with torch.no_grad():
            model(xf, tf_)

    train = timed(step, a.repeats)
    fwd = timed(forward, a.repeats)
    print(json.dumps({
        "config": cfg,
        "params": sum(q.numel() for q in model.parameters()),
        "threads": a.threads,
        "torch": torch.__version__,
        "train_batch": a.train_batch,
        "fwd_batch": a.fwd_batch,
        "train_s": train,
        "fwd_s": fwd,
        "train_img_s": a.train_batch / statistics.median(train),
        "fwd_img_s": a.fwd_batch / statistics.median(fwd),
    }))


if __name__ == "__main__":
    main()
