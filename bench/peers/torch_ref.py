#!/usr/bin/env python3
"""The notebook's toy 2-D diffusion pipeline in PyTorch (eager, CPU): the peer that
`cargo xtask bench --peers` times beside toydiff.

The same pipeline as the notebook (and as `cargo xtask all`), the way a PyTorch tutorial
writes it:

- data: two Gaussian clusters of 500 points each, means (-2, -2) and (2, 2), sd 0.5;
- schedule: T = 500, beta linear from 1e-4 to 0.02 (Ho et al. 2020, section 4);
- forward snapshots: x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) z for t = 1..T, one
  snapshot every 50 steps (the notebook's forward GIF);
- denoiser eps(x_t, t/T): Linear(3,128)-ReLU-Linear(128,128)-ReLU-Linear(128,2), 2000
  Adam steps (lr 1e-3) on batches of 128 drawn with replacement, MSE to the true noise;
- classifier p(y | x_t, t): Embedding(500, 32) of t, concatenated with x_t, then
  Linear(34,64)-ReLU-Linear(64,32)-ReLU-Linear(32,2), 1000 epochs of shuffled batches of
  128 (8 steps each, 8000 steps), cross-entropy, Adam 1e-3;
- sampling: 500 samples, DDPM ancestral steps t = T..1 with sigma_t^2 = beta_t, a
  snapshot every 10 steps; guided runs add s beta_t grad_x log p(y | x_t, t) to the mean
  (s = 30; Dhariwal & Nichol 2021, Algorithm 1), the gradient from one backward pass over
  the whole batch.

Prints one JSON object: {"threads", "torch", "timings_s": {stage: seconds}, "metrics"}.
"""
import argparse
import json
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

T = 500
N_PER_CLASS = 500
NUM_SAMPLES = 500
GUIDANCE_SCALE = 30.0
SNAPSHOT_EVERY = 10
FORWARD_SNAPSHOT_EVERY = 50


def two_clusters(n_per_class, gen):
    """n_per_class points around (-2, -2) (label 0) and as many around (2, 2) (label 1)."""
    x = torch.randn(2 * n_per_class, 2, generator=gen) * 0.5
    x[:n_per_class] -= 2.0
    x[n_per_class:] += 2.0
    y = torch.cat([torch.zeros(n_per_class, dtype=torch.long), torch.ones(n_per_class, dtype=torch.long)])
    return x, y


class Schedule:
    """beta_t, alpha_t = 1 - beta_t and alpha_bar_t = prod alpha_i, computed in float64 (index t - 1)."""

    def __init__(self, num_steps):
        self.beta = np.linspace(1e-4, 0.02, num_steps)
        self.alpha = 1.0 - self.beta
        self.alpha_bar = np.cumprod(self.alpha)
        self.sqrt_ab = torch.tensor(np.sqrt(self.alpha_bar), dtype=torch.float32)
        self.sqrt_1m_ab = torch.tensor(np.sqrt(1.0 - self.alpha_bar), dtype=torch.float32)

    def q_sample(self, x0, t, noise):
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise, t 1-based (a tensor)."""
        return self.sqrt_ab[t - 1, None] * x0 + self.sqrt_1m_ab[t - 1, None] * noise


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(T, 32)
        self.head = nn.Sequential(nn.Linear(34, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, x_t, t):
        """Logits of p(y | x_t, t) for 1-based steps t (a long tensor)."""
        return self.head(torch.cat([x_t, self.embedding(t - 1)], dim=1))


def denoiser_net():
    return nn.Sequential(nn.Linear(3, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 2))


def with_time(x_t, t):
    """[x_t, t/T]: the denoiser's input."""
    return torch.cat([x_t, torch.full((x_t.shape[0], 1), t / T)], dim=1)


def forward_snapshots(x0, sched, gen):
    x = x0.clone()
    snaps = [x.clone()]
    for t in range(1, T + 1):
        z = torch.randn(x.shape, generator=gen)
        x = float(np.sqrt(sched.alpha[t - 1])) * x + float(np.sqrt(sched.beta[t - 1])) * z
        if t % FORWARD_SNAPSHOT_EVERY == 0:
            snaps.append(x.clone())
    return snaps


def train_denoiser(x0, sched, gen):
    net = denoiser_net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(2000):
        idx = torch.randint(0, x0.shape[0], (128,), generator=gen)
        t = torch.randint(1, T + 1, (128,), generator=gen)
        noise = torch.randn(128, 2, generator=gen)
        x_t = sched.q_sample(x0[idx], t, noise)
        inp = torch.cat([x_t, (t.float() / T)[:, None]], dim=1)
        loss = F.mse_loss(net(inp), noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return net, losses


def train_classifier(x0, y, sched, gen):
    clf = Classifier()
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
    n = x0.shape[0]
    for _ in range(1000):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, 128):
            b = perm[start : start + 128]
            t = torch.randint(1, T + 1, (b.shape[0],), generator=gen)
            x_t = sched.q_sample(x0[b], t, torch.randn(b.shape[0], 2, generator=gen))
            loss = F.cross_entropy(clf(x_t, t), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return clf


def guidance_gradient(clf, x, t, target):
    """grad_x log p(target | x_t, t) for every row, from one backward pass over the batch."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        ts = torch.full((x.shape[0],), t, dtype=torch.long)
        log_p = F.log_softmax(clf(x, ts), dim=1)[:, target].sum()
        (grad,) = torch.autograd.grad(log_p, x)
    return grad


@torch.no_grad()
def sample(den, sched, gen, clf=None, target=0):
    """DDPM ancestral sampling (Ho et al. 2020, Algorithm 2), guided when `clf` is given."""
    x = torch.randn(NUM_SAMPLES, 2, generator=gen)
    snaps = [x.clone()]
    for t in range(T, 0, -1):
        beta, alpha, ab = (float(v[t - 1]) for v in (sched.beta, sched.alpha, sched.alpha_bar))
        eps = den(with_time(x, t))
        mean = (x - (beta / float(np.sqrt(1.0 - ab))) * eps) / float(np.sqrt(alpha))
        if clf is not None:
            mean = mean + GUIDANCE_SCALE * beta * guidance_gradient(clf, x, t, target)
        x = mean + float(np.sqrt(beta)) * torch.randn(x.shape, generator=gen) if t > 1 else mean
        if t % SNAPSHOT_EVERY == 0 or t == 1:
            snaps.append(x.clone())
    return snaps


@torch.no_grad()
def accuracy(clf, sched, n_per_class, t, gen):
    """Accuracy of the classifier on fresh points noised to step t."""
    x0, y = two_clusters(n_per_class, gen)
    ts = torch.full((x0.shape[0],), t, dtype=torch.long)
    x_t = sched.q_sample(x0, ts, torch.randn(x0.shape, generator=gen))
    return float((clf(x_t, ts).argmax(1) == y).float().mean())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--seed", type=int, default=1234)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    sched = Schedule(T)
    x0, y = two_clusters(N_PER_CLASS, gen)

    timings = {}

    def timed(name, f, *args, **kw):
        start = time.perf_counter()
        out = f(*args, **kw)
        timings[name] = time.perf_counter() - start
        return out

    timed("forward_snapshots", forward_snapshots, x0, sched, gen)
    den, losses = timed("denoiser_train", train_denoiser, x0, sched, gen)
    clf = timed("classifier_train", train_classifier, x0, y, sched, gen)
    den.eval()
    clf.eval()
    unguided = timed("sample_unguided", sample, den, sched, gen)[-1].numpy()
    g0 = timed("sample_guided_0", sample, den, sched, gen, clf=clf, target=0)[-1].numpy()
    g1 = timed("sample_guided_1", sample, den, sched, gen, clf=clf, target=1)[-1].numpy()
    timings["total"] = sum(timings.values())

    side = unguided.sum(1) > 0  # the Bayes boundary between the clusters is x + y = 0
    metrics = {
        "acc_t250_200": accuracy(clf, sched, 100, 250, gen),
        "acc_t250_10000": accuracy(clf, sched, 5000, 250, gen),
        "guided0_precision": float((g0.sum(1) < 0).mean()),
        "guided1_precision": float((g1.sum(1) > 0).mean()),
        "unguided_frac_class1": float(side.mean()),
        "unguided_mean_std": float(np.mean([unguided[side].std(0).mean(), unguided[~side].std(0).mean()])),
        "denoiser_last200_loss": float(np.mean(losses[-200:])),
    }
    print(json.dumps({"threads": a.threads, "torch": torch.__version__, "timings_s": timings, "metrics": metrics}, indent=1))


if __name__ == "__main__":
    main()
