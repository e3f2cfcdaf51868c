"""`make review-server ADDRESS=… PORT=…`: serve the app for reviewers on another machine.

Refuses, in one line, to listen beyond loopback without a researcher password hash. Tracebacks are never
shown to the browser in this mode. `python -m core.access.server --hash` makes a hash from a typed password.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from core.access import gate, passwords

ROOT = Path(__file__).resolve().parents[2]


def streamlit_command(address: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "app.py"),
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--client.showErrorDetails",
        "none",
        "--client.toolbarMode",
        "minimal",
        # Streamlit's JSON-over-HTTP agent API stays off: reviewers use the browser page only.
        "--server.enableAgentApi",
        "false",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="", help="the address to listen on, e.g. 192.168.1.20 or 0.0.0.0")
    parser.add_argument("--port", type=int, default=8502)
    parser.add_argument("--hash", action="store_true", help="print an Argon2 hash of a password typed twice")
    args = parser.parse_args(argv)
    if args.hash:
        first, second = getpass.getpass("Researcher password: "), getpass.getpass("Again: ")
        if first != second:
            print("The two passwords differ.", file=sys.stderr)
            return 2
        try:
            print(passwords.hash_password(first))
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        return 0
    if not args.address:
        print("Choose the address to serve on: make review-server ADDRESS=192.168.1.20 (or 0.0.0.0).", file=sys.stderr)
        return 2
    os.environ["STUDIO_SHARING"] = "on"
    if line := gate.refusal(args.address, passwords.configured_hash()):
        print(line, file=sys.stderr)
        return 2
    print(f"==> review sharing on http://{args.address}:{args.port}: invite links and the researcher password only")
    os.chdir(ROOT)
    os.execv(sys.executable, streamlit_command(args.address, args.port))
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
