"""``python -m pgconnect`` and the ``pgconnect`` console script.

Ctrl-C while Python is still importing the command line would end in a KeyboardInterrupt
traceback, before the error boundary (``pgconnect.cli.main``) exists. Until the boundary takes
over, SIGINT ends the process with the boundary's own line and status; nothing has been started
or changed by then. A SIGINT that the caller ignores (``nohup``, a background job) stays ignored.
"""

import os
import signal


def _interrupted_while_starting(signum: int, frame: object) -> None:
    os.write(2, b"error: interrupted\n")
    os._exit(130)


def main() -> None:
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupted_while_starting)
    from pgconnect.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
