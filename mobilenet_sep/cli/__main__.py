import sys

from mobilenet_sep.cli import main

sys.exit(main())
