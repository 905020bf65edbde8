"""Tasks: data, head, loss and metrics around a searched backbone."""

from rlnas.tasks.base import Network, Task
from rlnas.tasks.classification import ClassificationHead, ClassificationTask

__all__ = ["ClassificationHead", "ClassificationTask", "Network", "Task"]
