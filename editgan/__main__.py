import sys

from editgan.cli import main

sys.exit(main())
