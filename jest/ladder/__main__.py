"""python -m jest.ladder CONFIG: the ladder's rungs, runs, tokens and FLOPs (no job runs)."""
from __future__ import annotations

import argparse

from jest.experiment import load_config
from jest.ladder.rungs import ladder_flops


def main(argv: list[str] | None = None) -> None:
    """python -m jest.ladder CONFIG: the ladder's rungs, runs, tokens and FLOPs (no job runs)."""
    p = argparse.ArgumentParser(prog="python -m jest.ladder", description=main.__doc__)
    p.add_argument("config")
    cfg = load_config(p.parse_args(argv).config)
    rows = ladder_flops(cfg)
    for rung, r in rows.items():
        print(f"{rung}: N = {r['matmul_params']:,}, 1x {r['steps']} steps = {r['tokens']:,} tokens, {r['runs']} runs, "
              f"{r['flops_train']:.3e} training FLOPs, {r['flops_train_score']:.3e} train+score")
    print(f"ladder: {sum(r['runs'] for r in rows.values())} runs, "
          f"{sum(r['flops_train_score'] for r in rows.values()):.3e} train+score FLOPs")


if __name__ == "__main__":
    main()
