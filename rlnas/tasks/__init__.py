"""Tasks: data, head, loss and metrics around a searched backbone."""

from rlnas.tasks.base import Network, Task
from rlnas.tasks.classification import ClassificationHead, ClassificationTask
from rlnas.tasks.detection import DetectionTask, FCOSHead
from rlnas.tasks.sequence import SequenceClassificationTask
from rlnas.tasks.signal import SignalClassificationTask

__all__ = [
    "ClassificationHead",
    "ClassificationTask",
    "DetectionTask",
    "FCOSHead",
    "Network",
    "SequenceClassificationTask",
    "SignalClassificationTask",
    "Task",
]
