from typing_extensions import Buffer

def first_broken(
    prev: Buffer,
    first: int,
    versions_be: Buffer,
    stream_len_be: Buffer,
    topic_len_be: Buffer,
    payload_len_be: Buffer,
    streams: Buffer,
    topics: Buffer,
    payloads: Buffer,
    hashes: Buffer,
    /,
) -> int: ...
def offsets(lengths_be: Buffer, columns: int, /) -> tuple[bytes, ...]: ...
def split_page(
    n: int, versions: Buffer, streams: Buffer, topics: Buffer, payloads: Buffer, /
) -> tuple[bytes, ...] | None: ...
