import sys

from moorage.cli.entry import run

sys.exit(run(prog_name="moorage"))
