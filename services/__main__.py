"""`python -m services <name>`: run one service with its config from the environment."""

import argparse
import sys

from services.runtime import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__)
    parser.add_argument("name", help="the service to run: catalog, inventory, order or payment")
    args = parser.parse_args(argv)
    return serve(args.name)


if __name__ == "__main__":
    sys.exit(main())
