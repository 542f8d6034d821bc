"""`python -m services <name>`: run one service with its config from the environment."""

import argparse
import sys

from services.runtime import serve
from services.runtime.config import ServerConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__)
    parser.add_argument("name", help="the service to run: catalog, inventory, order or payment")
    args = parser.parse_args(argv)
    try:
        config = ServerConfig.from_env(args.name)
    except ValueError as error:
        parser.error(str(error))  # a clear message and exit code 2, not a traceback
    return serve(args.name, config)


if __name__ == "__main__":
    sys.exit(main())
