"""The ``pyreg`` command: ``pyreg compare``, ``pyreg sweep`` and ``pyreg bench-report``.

Errors in what the user asked for print one line (``pyreg: error: ...``) and exit with status 2;
an interrupted run exits with 130.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _models(text: str) -> tuple[str, ...]:
    from .definition import KINDS

    if text == "all":
        return KINDS
    models = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in models if m not in KINDS]
    if bad or not models:
        raise argparse.ArgumentTypeError(
            f"choose from {', '.join(KINDS)} or 'all' (comma-separated); got {text!r}"
        )
    return models


def _int_at_least(minimum: int):
    """An argparse type: an integer >= minimum."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}; got {value}")
        return value

    return parse


_positive, _non_negative = _int_at_least(1), _int_at_least(0)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pyreg", description="Fast, Keras-faithful regularised MLPs on the CPU.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    c = sub.add_parser(
        "compare", help="train the L2-vs-Dropout study with pyreg and Keras and report"
    )
    c.add_argument(
        "--models",
        type=_models,
        default=("l2", "dropout"),
        help="comma-separated: l2, dropout, none (no regularisation), both (L2 + dropout), or all",
    )
    c.add_argument("--epochs", type=_positive, default=5)
    c.add_argument("--batch-size", type=_positive, default=32)
    c.add_argument(
        "--seeds", type=_positive, default=1, help="seeds per model and framework (mean and spread)"
    )
    c.add_argument(
        "--threads",
        type=_non_negative,
        default=0,
        help="threads for pyreg and TensorFlow (0 = all)",
    )
    c.add_argument(
        "--out", default="pyreg-results", help="folder for figures, results.json and report.md"
    )
    c.add_argument("--no-keras", action="store_true", help="train with pyreg only")
    c.add_argument("--quick", action="store_true", help="a small subset of MNIST, for smoke tests")
    c.add_argument(
        "--readme",
        default=None,
        metavar="README.md",
        help="also rewrite the results block of this README (between its results markers)",
    )
    r = sub.add_parser(
        "bench-report", help="charts and a Markdown table from pytest-benchmark JSON"
    )
    r.add_argument(
        "results", help="the file written by: pytest bench --benchmark-json RESULTS.json"
    )
    r.add_argument(
        "--out", default=None, help="output folder (default: RESULTS-report next to the file)"
    )
    r.add_argument(
        "--readme",
        default=None,
        metavar="README.md",
        help="also rewrite the benchmark block of this README (between its bench markers)",
    )
    from .sweep.cli import add_parser as add_sweep_parser

    add_sweep_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "compare":
            from .compare import CompareConfig, run_compare

            cfg = CompareConfig(models=args.models, epochs=args.epochs, batch_size=args.batch_size, seeds=args.seeds,
                                threads=args.threads, keras=not args.no_keras, quick=args.quick, out=args.out)  # fmt: skip
            result = run_compare(cfg)
            if args.readme:
                from .compare import readme_block
                from .readme import replace_block

                replace_block(args.readme, "results", readme_block(result, args.out))
                print(f"results block of {args.readme} updated")
        elif args.command == "sweep":
            from .sweep.cli import run as run_sweep_command

            return run_sweep_command(
                args, " ".join(["pyreg", *(argv if argv is not None else sys.argv[1:])])
            )
        else:
            from .bench_report import make_report, readme_table
            from .readme import replace_block

            done = make_report(args.results, args.out)
            print(f"{done['groups']} groups; speedup.png and report.md written to {done['out']}/")
            if args.readme:
                replace_block(args.readme, "bench", readme_table(done, args.results, args.readme))
                print(f"bench block of {args.readme} updated")
    except KeyboardInterrupt:
        kept = (f"; finished trials are kept in {args.out}/ (run the same command to resume)"
                if args.command == "sweep" else "")  # fmt: skip
        print(f"pyreg: interrupted{kept}", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, RuntimeError, ImportError) as e:
        print(f"pyreg: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
