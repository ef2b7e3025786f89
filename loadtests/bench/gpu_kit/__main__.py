"""``python -m loadtests.bench.gpu_kit build | device K N | device run`` (the package's docstring says more)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from loadtests.bench.gpu_kit import ROOT
from modelyard.errors import ModelyardError


def parser() -> argparse.ArgumentParser:
    from loadtests.bench import gpu_kit

    ap = argparse.ArgumentParser(
        prog="python -m loadtests.bench.gpu_kit",
        description=gpu_kit.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kit = Path(os.environ.get("GPU_KIT_DIR") or ROOT / ".gpu-kit")
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="the kit, in call-sized folders (here)")
    b.add_argument("--python-version", default="3.12", help="the GPU machine's python3 (default 3.12)")
    b.add_argument("--kit", type=Path, default=kit, help="GPU_KIT_DIR (default .gpu-kit)")
    b.add_argument("--part-mib", type=float, default=float(os.environ.get("GPU_KIT_PART_MIB") or 60))
    b.add_argument("--repo", type=Path, default=Path(os.environ.get("GPU_KIT_REPO") or ROOT / "models"))
    b.add_argument(
        "--data-dir",
        type=Path,
        default=Path(
            os.environ.get("GPU_KIT_DATA_DIR")
            or os.environ.get("MODELYARD_DATA_DIR")
            or ROOT.parent / "shared" / "datasets"
        ),
    )
    b.add_argument(
        "--serve-models",
        default=os.environ.get("GPU_KIT_SERVE_MODELS") or "imdb,boston",
        help="models the bench and the GPU tests serve: every file of theirs comes along",
    )
    d = sub.add_parser("device", help="call K of N, or 'run' to measure again (there)")
    d.add_argument("call", nargs="+", metavar="K N | run")
    d.add_argument("--kit", type=Path, default=kit)
    f = sub.add_parser("facts", help="versions, the served models verified, a CUDA session (there, in the venv)")
    f.add_argument("kit", type=Path)
    return ap


def build(args) -> int:
    from loadtests.bench.gpu_kit.build import BuildConfig, gather, pack, report

    fixtures = os.environ.get("MODELYARD_SERVING_FIXTURES")
    cfg = BuildConfig(
        kit=args.kit.resolve(),
        repo=args.repo,
        data_dir=args.data_dir,
        python=args.python_version,
        part_mib=args.part_mib,
        served={m for m in args.serve_models.split(",") if m},
        fixtures=Path(fixtures) if fixtures else None,
    )
    report(cfg, pack(cfg, gather(cfg)))
    return 0


def device(args) -> int:
    from loadtests.bench.gpu_kit import device

    if args.call == ["run"]:
        return device.rerun()
    if len(args.call) != 2 or not all(c.isdigit() for c in args.call):
        raise ModelyardError("usage: device K N (call K of N) | device run")
    return device.call(args.kit.resolve(), int(args.call[0]), int(args.call[1]))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "build":
            return build(args)
        if args.command == "device":
            return device(args)
        from loadtests.bench.gpu_kit import facts

        return facts.main(args.kit)
    except ModelyardError as e:
        print(f"gpu_kit: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
