"""The ``treadle`` command: ``app`` and ``main`` in ``app.py``, commands by theme beside it."""

from treadle.cli import history_commands as history_commands
from treadle.cli import io_commands as io_commands
from treadle.cli import run_commands as run_commands
from treadle.cli import schedule_commands as schedule_commands
from treadle.cli import secret_commands as secret_commands
from treadle.cli import server_commands as server_commands
from treadle.cli.app import app as app
from treadle.cli.app import main as main
