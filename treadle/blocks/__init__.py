"""The authoring API: decorators, context injection, loading block files, SQL rendering."""

from treadle.blocks.decorators import callback as callback
from treadle.blocks.decorators import condition as condition
from treadle.blocks.decorators import custom as custom
from treadle.blocks.decorators import data_exporter as data_exporter
from treadle.blocks.decorators import data_loader as data_loader
from treadle.blocks.decorators import sensor as sensor
from treadle.blocks.decorators import test as test
from treadle.blocks.decorators import transformer as transformer
