"""Result records: a value's metadata and payload, as models (the format layer turns
them into bytes and back)."""

from moorage.records.models import ResultRecord, ResultRecordMetadata

__all__ = ["ResultRecord", "ResultRecordMetadata"]
