"""PyTorch side of `npm run bench -- kernels`: the same models, optimizers and kernel shapes as
flatmesh's side, on one CPU thread, timed in this process's CPU seconds.

A persistent worker: it reads one JSON command per line on stdin and answers one JSON line on
stdout, so the Node side can alternate its own measurements with these (ABBA rounds) in the same
run without paying torch's import time per measurement.

Commands:
  {"op": "info"}
      -> {"torch": "1.13.0", "threads": 1, "blas": "...", "mkldnn": true}
  {"op": "train", "model": "mlp", "optimizer": "sgd", "batch": 32, "steps": 40}
      -> {"samples": 1280, "cpuMs": ..., "wallMs": ...}   (models persist between calls)
  {"op": "kernel", "name": "...", "reps": 50}
      -> {"cpuMsPerCall": ...}   (names from KERNELS below)
  {"op": "quit"}

Models, optimizers and shapes follow src/learn/model.ts and src/learn/optim/optimizer.ts (ASAM:
eps = rho * T^2 g / ||T g||, T = |w| + eta for weights, 1 for biases; second gradient at w + eps;
restore; SGD step with that gradient). Batches are drawn from a fixed synthetic set of 512 samples
(uniform pixels, uniform labels), as the Node side draws them.
"""

import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(1)
torch.set_num_interop_threads(1)
torch.manual_seed(1)

LR = 0.01
RHO = 0.7
ETA = 0.2
INPUT = {"mlp": (1, 28, 28), "cnn-small": (1, 28, 28), "cnn-fedavg": (3, 32, 32)}


def mlp():
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 200),
        nn.ReLU(),
        nn.Linear(200, 200),
        nn.ReLU(),
        nn.Linear(200, 10),
    )


def cnn_small():
    # 'same' 3x3 convs and 2x2 pools; 28 -> 14 -> 7 (even sizes: same as tfjs 'same' pooling).
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(7 * 7 * 32, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def cnn_fedavg():
    return nn.Sequential(
        nn.Conv2d(3, 64, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 5 * 5, 384),
        nn.ReLU(),
        nn.Linear(384, 192),
        nn.ReLU(),
        nn.Linear(192, 10),
    )


BUILD = {"mlp": mlp, "cnn-small": cnn_small, "cnn-fedavg": cnn_fedavg}


class Trainer:
    def __init__(self, model_name, optimizer, batch):
        self.model = BUILD[model_name]()
        self.params = list(self.model.parameters())
        self.is_weight = [p.dim() > 1 for p in self.params]
        self.opt = torch.optim.SGD(self.params, lr=LR, momentum=0)
        self.asam = optimizer == "asam"
        self.batch = batch
        c, h, w = INPUT[model_name]
        g = torch.Generator().manual_seed(1)
        self.x = torch.rand(512, c, h, w, generator=g)
        self.y = torch.randint(0, 10, (512,), generator=g)
        self.g = g

    def loss(self, x, y):
        return F.cross_entropy(self.model(x), y)

    def step(self, x, y):
        return optimizer_step(self.params, self.is_weight, self.opt, self.asam, lambda: self.loss(x, y))

    def train(self, steps):
        losses = []
        for _ in range(steps):
            idx = torch.randint(0, 512, (self.batch,), generator=self.g)
            losses.append(self.step(self.x[idx], self.y[idx]).detach())
        # One read-back per round, as flatmesh's trainer does.
        float(torch.stack(losses).mean())
        return steps * self.batch


def optimizer_step(params, is_weight, opt, asam, loss_fn):
    """One SGD or ASAM step (fedsam's minimizers.py: ascent, second gradient, restore, descent)."""
    opt.zero_grad()
    loss = loss_fn()
    loss.backward()
    if not asam:
        opt.step()
        return loss
    with torch.no_grad():
        t = [p.abs() + ETA if w else None for p, w in zip(params, is_weight)]
        tg = [p.grad * ti if ti is not None else p.grad for p, ti in zip(params, t)]
        norm = torch.norm(torch.stack([torch.norm(v) for v in tg])) + 1e-16
        eps = []
        for p, ti, v in zip(params, t, tg):
            e = (v * ti if ti is not None else v) * (RHO / norm)
            p.add_(e)
            eps.append(e)
    opt.zero_grad()
    loss_fn().backward()
    with torch.no_grad():
        for p, e in zip(params, eps):
            p.sub_(e)
    opt.step()
    return loss


def timed(fn):
    c0 = time.process_time()
    t0 = time.perf_counter()
    out = fn()
    return out, (time.process_time() - c0) * 1000, (time.perf_counter() - t0) * 1000


def kernels():
    """The per-kernel cases, each a zero-argument callable doing one call (inputs made once)."""
    g = torch.Generator().manual_seed(2)

    def r(*shape, grad=False):
        t = torch.rand(*shape, generator=g) - 0.5
        return t.requires_grad_(grad)

    cases = {}
    # GEMMs of a batch-32 MLP 784-200-200-10: forward, input gradient, weight gradient. PyTorch
    # keeps Linear weights as [out, in]; these are the products autograd runs.
    for k, n in ((784, 200), (200, 200), (200, 10)):
        x, w, dy = r(32, k), r(n, k), r(32, n)
        cases[f"matmul fwd {32}x{k}x{n}"] = (lambda x=x, w=w: x @ w.t())
        cases[f"matmul dx {32}x{n}x{k}"] = (lambda dy=dy, w=w: dy @ w)
        cases[f"matmul dw {k}x{32}x{n}"] = (lambda dy=dy, x=x: dy.t() @ x)
    # Conv layers of the two CNNs (NCHW here; the same arithmetic as NHWC on the Node side).
    convs = {
        "cnn-small conv1": (1, 16, 3, 1, 28),
        "cnn-small conv2": (16, 32, 3, 1, 14),
        "cnn-fedavg conv1": (3, 64, 5, 0, 32),
        "cnn-fedavg conv2": (64, 64, 5, 0, 14),
    }
    for name, (cin, cout, k, pad, hw) in convs.items():
        x, wt = r(32, cin, hw, hw), r(cout, cin, k, k)
        out = hw + 2 * pad - k + 1
        dy = r(32, cout, out, out)
        cases[f"{name} fwd"] = (lambda x=x, wt=wt, pad=pad: F.conv2d(x, wt, padding=pad))
        cases[f"{name} dx"] = (
            lambda x=x, wt=wt, dy=dy, pad=pad: torch.nn.grad.conv2d_input(
                x.shape, wt, dy, padding=pad
            )
        )
        cases[f"{name} dw"] = (
            lambda x=x, wt=wt, dy=dy, pad=pad: torch.nn.grad.conv2d_weight(
                x, wt.shape, dy, padding=pad
            )
        )
    # The optimizers' elementwise passes: one step on a lone 784x200 weight under the linear loss
    # sum(w * c), whose gradient is one multiply; the rest is the update (and ASAM's perturbation).
    for kind in ("sgd", "asam"):
        w = r(784, 200, grad=True)
        c = r(784, 200)
        opt = torch.optim.SGD([w], lr=LR, momentum=0)
        cases[f"{kind} step 784x200"] = (
            lambda w=w, c=c, opt=opt, kind=kind: optimizer_step(
                [w], [True], opt, kind == "asam", lambda: (w * c).sum()
            )
        )
    return cases


def blas_library():
    """Which BLAS library this process mapped (torch's Linear layers go through it)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() or "mkl" in line}
        return ", ".join(sorted(os.path.realpath(p) for p in libs if p.startswith("/")))
    except OSError:
        return "unknown"


def main():
    trainers = {}
    cases = None
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "quit":
            break
        if op == "info":
            # Touch a Linear so the BLAS library is loaded before we look for it.
            nn.Linear(4, 4)(torch.rand(2, 4))
            torch.rand(8, 8) @ torch.rand(8, 8)
            out = {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "blas": blas_library(),
                "mkldnn": torch.backends.mkldnn.is_available(),
                "capability": torch.backends.cpu.get_cpu_capability()
                if hasattr(torch.backends, "cpu")
                else "unknown",
            }
        elif op == "train":
            key = (cmd["model"], cmd["optimizer"], cmd["batch"])
            if key not in trainers:
                trainers[key] = Trainer(*key)
            samples, cpu, wall = timed(lambda: trainers[key].train(cmd["steps"]))
            out = {"samples": samples, "cpuMs": cpu, "wallMs": wall}
        elif op == "kernel":
            if cases is None:
                cases = kernels()
            fn = cases[cmd["name"]]
            reps = cmd.get("reps", 20)
            # Gradients only where a case asks for them (the optimizer steps).
            with torch.set_grad_enabled(cmd["name"].endswith(("step 784x200",))):
                fn()
                _, cpu, wall = timed(lambda: [fn() for _ in range(reps)])
            out = {"cpuMsPerCall": cpu / reps, "wallMsPerCall": wall / reps}
        elif op == "kernels":
            if cases is None:
                cases = kernels()
            out = {"names": list(cases)}
        else:
            out = {"error": f"unknown op {op}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
