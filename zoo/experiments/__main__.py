"""python -m zoo.experiments FAMILY [--flags]: run one model family's seed experiments."""

from __future__ import annotations

import argparse
import importlib
import sys

from zoo import cli, data

# family -> module with Config, run(config, out, logdir) and a docstring
FAMILIES = {"rbm": "zoo.experiments.rbm", "vae": "zoo.experiments.vae", "dbn": "zoo.experiments.dbn",
            "dae": "zoo.experiments.dae", "gan": "zoo.experiments.gan"}


def main(argv=None):
    modules = {name: importlib.import_module(path) for name, path in FAMILIES.items()}
    parser = cli.parser("python -m zoo.experiments", "Run a model family's seed experiments: train, score, draw.")
    families = parser.add_subparsers(dest="family", metavar="FAMILY", required=True,
                                     help=f"one of: {', '.join(FAMILIES)}")
    for name, module in modules.items():
        summary = module.__doc__.strip().splitlines()[0]
        sub = cli.subparser(families, name, help=summary, description=module.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("--out", default=f"experiments/{name}", help="figures and README.md (default: %(default)s)")
        sub.add_argument("--logdir", default="tensorboard_logs", help="TensorBoard root of the training runs")
        cli.add_dataclass_flags(sub.add_argument_group("experiment"), module.Config)
    args = parser.parse_args(argv)
    module = modules[args.family]
    try:
        config = module.Config(**cli.flag_values(args, module.Config))
        module.run(config, args.out, args.logdir)
    except (ValueError, data.DataError) as error:
        parser.exit(2, f"{parser.prog} {args.family}: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
