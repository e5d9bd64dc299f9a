from collections.abc import Mapping

def plaintext(
    fields: Mapping[str, str], names: tuple[str, ...], kept: int, tail: bytes, /
) -> bytes: ...
