"""Documented size limits on everything a user or a client can send.

Anything above them is rejected with a ValidationError naming the field,
so a malformed or hostile message cannot make the backend allocate without bound."""

MAX_VERTICES = 5_000_000
MAX_FACES = 10_000_000
MAX_VIEWS = 64
MAX_IMAGE_SIDE = 4096
MAX_PARTS = 64
MAX_PART_NAME_CHARS = 200
MAX_DETECTIONS_PER_VIEW = 1000
MAX_HEADER_BYTES = 1 << 20  # 1 MiB of msgpack
MAX_MESSAGE_BYTES = 4 << 30  # all frames of one message
MAX_COLLECTION_SHAPES = 16  # shapes of one collection request
MAX_ARRAYS_PER_MESSAGE = 17 * MAX_COLLECTION_SHAPES  # a capture's arrays and its detections', per shape
MAX_WARNINGS = 32  # per result
MAX_WARNING_CHARS = 1000
