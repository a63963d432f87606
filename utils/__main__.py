import sys

from utils.tools.cli import main

sys.exit(main())
