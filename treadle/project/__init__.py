"""Reading and writing a project: settings, pipelines, blocks, io_config, validation."""

from treadle.project.loader import load_project as load_project
from treadle.project.model import BlockSpec as BlockSpec
from treadle.project.model import BlockType as BlockType
from treadle.project.model import Pipeline as Pipeline
from treadle.project.model import Project as Project
from treadle.project.model import RetryPolicy as RetryPolicy
from treadle.project.settings import ProjectSettings as ProjectSettings
