"""Token estimates made before a call, so the token bucket can be charged up front.

tiktoken is used only when installed *and* its encoding is already cached on disk
(it would otherwise download the encoding at run time). Otherwise a heuristic:
about four characters per token plus a fixed overhead per message. The gateway
corrects the estimate per deployment from the usage each response reports.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["estimate_prompt_tokens", "text_tokens"]

_CHARS_PER_TOKEN = 4.0
_PER_MESSAGE = 4
_PER_REQUEST = 3
_CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


@lru_cache(maxsize=1)
def _cached_encoder() -> Callable[[str], int] | None:
    if importlib.util.find_spec("tiktoken") is None:
        return None
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    folder = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "data-gym-cache"
    if not (folder / hashlib.sha1(_CL100K_URL.encode()).hexdigest()).is_file():
        return None
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base")
    return lambda text: len(enc.encode(text, disallowed_special=()))


def text_tokens(text: str) -> int:
    """Tokens in ``text``: exact with a cached tiktoken encoding, else ~4 chars per token."""
    enc = _cached_encoder()
    if enc is not None:
        return enc(text)
    return int(len(text) / _CHARS_PER_TOKEN + 0.999) if text else 0


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return "" if content is None else str(content)


def estimate_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Prompt tokens of a chat request: content tokens plus per-message overhead."""
    total = _PER_REQUEST
    for message in messages:
        total += _PER_MESSAGE + text_tokens(_content_text(message.get("content")))
        if message.get("name"):
            total += 1
    return total
