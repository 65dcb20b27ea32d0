"""Fig. 6's measures for both shipped networks (zfbook.architecture.diagnose): dead maps of
conv1 and conv2 over the whole embedded test split, the layer-1 spectrum bands, and the
shift variation of conv1 and conv2 over 64 test images, timed against a budget of 10 s
for the two networks together. No baseline library computes these; the script prints the
measures it timed, so a change in them shows.

    .venv/bin/python benchmarks/bench_architecture.py [--images N] [--repeats R]
"""
import argparse
import time

import torch

import zfbook
from zfbook import architecture
from zfbook.data import embedded


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=2400, help="test images for the dead-map count")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    test = embedded("test", seed=0).images[: args.images]
    nets = {n: zfbook.pretrained(n) for n in ("alexnet-mini", "zfnet-mini")}
    times, report = [], {}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for name, net in nets.items():
            report[name] = architecture.diagnose(net, test)
        times.append(time.perf_counter() - t0)
    best = min(times)
    print(f"threads {torch.get_num_threads()}, {len(test)} test images, best of {args.repeats}")
    for name, r in report.items():
        print(f"  {name:13} dead conv1 {len(r['dead']['conv1'])}/{r['maps']['conv1']}, "
              f"conv2 {len(r['dead']['conv2'])}/{r['maps']['conv2']}; gap {r['bands']['gap']:.3f}; "
              f"shift variation conv1 {r['shift_variation']['conv1']:.4f}, conv2 {r['shift_variation']['conv2']:.4f}")
    print(f"both networks: {best:.2f} s (runs: {', '.join(f'{t:.2f}' for t in times)}); "
          f"{best / 10:.2f}x of the 10 s budget")


if __name__ == "__main__":
    main()
