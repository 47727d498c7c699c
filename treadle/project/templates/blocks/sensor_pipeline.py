"""Wait until another pipeline, ``load_taxi``, has succeeded for this run's execution date.

Copy this file into your project's ``sensors/`` folder and list it in a pipeline, upstream
of the blocks that use what ``load_taxi`` produced:

    blocks:
      - name: sensor_pipeline
        type: sensor
        interval: 1m          # how often to look at the run history (default 10s)
        timeout: 6h           # fail the run if load_taxi has not succeeded by then (default 1h)
      - name: build_report
        type: transformer
        upstream: [sensor_pipeline]

A block downstream receives the sensor's return value (True) as its first input.
"""

from treadle import sensor
from treadle.scheduler.sensors import pipeline_succeeded

PIPELINE = "load_taxi"


@sensor
def sensor_pipeline(*, execution_date):
    # The same execution date, to the second: right when both pipelines run on the same
    # schedule or are run by hand with the same --execution-date. When they run at different times of
    # day, pass execution_date.date() to accept any run of load_taxi on that day (UTC).
    # To accept any successful run that finished in the last 6 hours, whatever its date,
    # give no date and within="6h".
    return pipeline_succeeded(PIPELINE, execution_date)
