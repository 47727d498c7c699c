"""Wait for the day's raw file, then hand its path to the next block.

Copy this file into your project's ``sensors/`` folder and list it in a pipeline:

    blocks:
      - name: sensor_file
        type: sensor
        interval: 1m          # how often to look (default 10s)
        timeout: 6h           # fail the run if it has not arrived by then (default 1h)
      - name: load_raw_file
        type: data_loader
        upstream: [sensor_file]

The loader receives what the sensor returned, the file's path: ``def load_raw_file(path):``.
"""

from treadle import sensor
from treadle.scheduler.sensors import file_exists

# Relative to the project folder; a glob works too ("data/raw/*.csv"), and so does a
# bucket URL ("gs://my-bucket/raw/…", which needs `pip install fsspec gcsfs`).
PATH = "data/raw/{execution_date:%Y-%m-%d}.csv"


@sensor
def sensor_file(*, execution_date):
    path = PATH.format(execution_date=execution_date)
    # min_size=1: an empty file that is still being created does not count yet.
    if file_exists(path, min_size=1):
        return path
    return False  # not yet: Treadle asks again after `interval`
