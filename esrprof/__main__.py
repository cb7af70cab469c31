import sys

from esrprof.cli import main

sys.exit(main())
