"""PyTorch CPU reference timing of one distillation step (PD, RCFD or RDD), for bench/run.ts.

Written for this project from ../shared/docs/method.md (sections 4 and 5), with the shapes of
bench/distill_step.ts: the shipped MNIST teacher's UNet (bench/torch_unet.py's UNet at the
`mnist` preset; dropout 0 as the shipped teacher), its student copy, and the shipped
classifier's architecture (pre-activation ResNet, width 16, one block per stage, feature map
4 x 4 x 64), batch 32, queue 20000, contrast set 4096, 128 enqueued per step. Weights are random
(timing only). Run with Debian's interpreter (python3-torch):
    /usr/bin/python3 bench/torch_distill.py --method rdd --threads 1 --repeats 5
Prints ONE JSON object: method, threads, batch, seconds per step (after --warmup untimed steps,
default 3, as bench/distill_step.ts).
"""
import argparse
import copy
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_unet import UNet, timed  # noqa: E402

MNIST_UNET = dict(image_size=32, in_ch=1, ch=16, ch_mult=[1, 2, 2], num_res_blocks=1, attn=[8], dropout=0.0)


class PreActBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1, self.c1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.c2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.short = None if stride == 1 and cin == cout else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        a = F.relu(self.bn1(x))
        h = self.c2(F.relu(self.bn2(self.c1(a))))
        return h + (x if self.short is None else self.short(a))


class Classifier(nn.Module):
    """lib/models/classifier.ts: stem, stages w, 2w, 4w, 4w (strides 1, 2, 2, 2), BN-ReLU map."""

    def __init__(self, in_ch=1, width=16, classes=10):
        super().__init__()
        self.stem = nn.Conv2d(in_ch, width, 3, 1, 1, bias=False)
        chans, strides, blocks, c = [width, 2 * width, 4 * width, 4 * width], [1, 2, 2, 2], [], width
        for cout, s in zip(chans, strides):
            blocks.append(PreActBlock(c, cout, s))
            c = cout
        self.blocks, self.bn, self.fc = nn.Sequential(*blocks), nn.BatchNorm2d(c), nn.Linear(c, classes)

    def forward(self, x):
        fmap = F.relu(self.bn(self.blocks(self.stem(x))))
        return fmap, fmap.mean((2, 3))


def kl_rows(t_logits, s_logits):
    """KL(softmax(t) || softmax(s)) summed over rows and classes (caller divides)."""
    p = F.softmax(t_logits, -1)
    return (p * (F.log_softmax(t_logits, -1) - F.log_softmax(s_logits, -1))).sum()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--method", choices=["pd", "rcfd", "rdd"], required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    B, T = a.batch, 128
    teacher = UNet(**MNIST_UNET).eval()
    student = copy.deepcopy(teacher).train()
    clf = Classifier().eval()
    for q in list(teacher.parameters()) + list(clf.parameters()):
        q.requires_grad_(False)
    C, M, K, ENQ = 64, 20000, 4096, 128
    head = nn.Sequential(nn.Conv2d(C, C, 1), nn.BatchNorm2d(C), nn.ReLU(), nn.Conv2d(C, C, 1)).train()
    queue = F.normalize(torch.randn(M, C), dim=1)
    contrast_rows = torch.linspace(0, M - 1, K).round().long()
    ptr = [0]
    opt = torch.optim.Adam(student.parameters(), lr=5e-5)
    opt_head = torch.optim.Adam(head.parameters(), lr=5e-5)
    abar = torch.cos((torch.arange(T + 1, dtype=torch.float64) / T + 0.008) / 1.008 * math.pi / 2) ** 2
    abar = abar.clamp(1e-5, 0.9999).float()
    stride = T // 8
    x0 = torch.rand(B, 1, 32, 32) * 2 - 1

    def coef(idx):
        return abar[idx].sqrt()[:, None, None, None], (1 - abar[idx]).sqrt()[:, None, None, None]

    def ddim_step(z, t, s):
        with torch.no_grad():
            xp = teacher(z, t).clamp(-1, 1)
            a_t, s_t = coef(t)
            eps = (z - a_t * xp) / s_t
            a_s, s_s = coef(s)
            return a_s * xp + s_s * eps

    def step():
        t = (torch.randint(1, 8 // 2 + 1, (B,)) * 2) * stride
        eps = torch.randn_like(x0)
        a_t, s_t = coef(t)
        z = a_t * x0 + s_t * eps
        z2 = ddim_step(ddim_step(z, t, t - stride), t - stride, t - 2 * stride)
        a_2, s_2 = coef(t - 2 * stride)
        r = s_2 / s_t
        x_tgt = (z2 - r * z) / (a_2 - r * a_t)
        eps_tgt = (z - a_t * x_tgt) / s_t
        opt.zero_grad(set_to_none=True)
        opt_head.zero_grad(set_to_none=True)
        xs = student(z, t)
        if a.method == "pd":
            eps_s = (z - a_t * xs) / s_t
            mse_x = ((xs - x_tgt) ** 2).mean((1, 2, 3))
            mse_e = ((eps_s - eps_tgt) ** 2).mean((1, 2, 3))
            loss = torch.maximum(mse_x, mse_e).mean()
        else:
            with torch.no_grad():
                ft_map, ft = clf(x_tgt)
            fs_map, fs = clf(xs)
            loss = kl_rows(ft / 0.9, fs) / B
            if a.method == "rdd":
                hw = ft_map.shape[2] * ft_map.shape[3]
                tn = F.normalize(ft_map.flatten(2), dim=1)  # [B, C, hw]
                sn = F.normalize(fs_map.flatten(2), dim=1)
                sim_t = torch.einsum("bci,dcj->bdij", tn, tn).reshape(-1, hw)
                sim_s = torch.einsum("bci,dcj->bdij", sn, sn).reshape(-1, hw)
                loss = loss + kl_rows(sim_t, sim_s) / (B * B * hw)
                t_pix = tn.transpose(1, 2).reshape(-1, C)  # per-pixel embeddings [B*hw, C]
                pick = torch.randperm(t_pix.shape[0])[:ENQ]
                at = ptr[0] if ptr[0] + ENQ <= M else M - ENQ
                queue[at:at + ENQ] = t_pix[pick]
                ptr[0] = 0 if ptr[0] + ENQ >= M else ptr[0] + ENQ
                bank = queue[contrast_rows]
                s_pix = F.normalize(head(fs_map), dim=1).flatten(2).transpose(1, 2).reshape(-1, C)
                lt, ls = t_pix @ bank.T / 0.1, s_pix @ bank.T / 0.1
                loss = loss + 0.1 * kl_rows(lt, ls) / B / hw
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        if a.method == "rdd":
            opt_head.step()

    seconds = timed(step, a.repeats, a.warmup)
    print(json.dumps({"method": a.method, "threads": a.threads, "batch": B, "torch": torch.__version__,
                      "seconds": seconds}))


if __name__ == "__main__":
    main()
