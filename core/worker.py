"""``python -m core.worker``: the engine worker entry point used by the add-on and the app."""

import sys

from core.jobs.worker import main

if __name__ == "__main__":
    sys.exit(main())
