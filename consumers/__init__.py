"""The live consumer service: keeps a model learning from a Kafka topic, exactly once.

Started by ``stream-logreg consume``; see :mod:`consumers.service`.
"""

from consumers.checkpoints import Checkpoint, CheckpointStore
from consumers.service import ConsumerService, ServiceConfig

__all__ = ["Checkpoint", "CheckpointStore", "ConsumerService", "ServiceConfig"]
