"""Run under torchrun by tests/unit/test_distributed.py: `flashtui ARGS...` plus the extra
arguments in $FLASHTUI_TEST_ARGS_RANK<RANK>, so two ranks can be given different flags."""

import os
import sys

from flashtui.cli import main

extra = os.environ.get(f"FLASHTUI_TEST_ARGS_RANK{os.environ['RANK']}", "").split()
raise SystemExit(main(sys.argv[1:] + extra))
