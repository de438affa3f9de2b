import sys

from autosize.cli import main

sys.exit(main())
