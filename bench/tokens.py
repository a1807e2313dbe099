"""Token counts with tiktoken's o200k_base, loaded offline.

tiktoken downloads its rank file on first use. Where that host cannot be reached, the same ranks are
rebuilt from the npm package js-tiktoken (fetched with npm pack) and placed in tiktoken's cache;
tiktoken then checks the file against its own pinned sha256 before using it, so a wrong conversion
cannot count silently.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path

import tiktoken
from tiktoken_ext import openai_public

JS_TIKTOKEN = "js-tiktoken@1.0.21"
CACHE = Path(os.environ.get("TIKTOKEN_CACHE_DIR") or Path(__file__).parent / ".tiktoken-cache")


def _pinned() -> tuple[str, str]:
    """The URL and sha256 tiktoken itself pins for o200k_base, read from its source (calling the
    loader would try the download)."""
    source = inspect.getsource(openai_public.o200k_base)
    url = re.search(r'"(https://[^"]+o200k_base\.tiktoken)"', source)
    expected = re.search(r'expected_hash="([0-9a-f]{64})"', source)
    assert url and expected, "tiktoken's o200k_base definition changed"
    return url.group(1), expected.group(1)


def _rebuild_from_npm(url: str, expected: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        packed = (
            subprocess.run(
                ["npm", "pack", JS_TIKTOKEN, "--silent"],
                cwd=tmp,
                capture_output=True,
                text=True,
                check=True,
                timeout=300,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        with tarfile.open(Path(tmp) / packed) as archive:
            member = archive.extractfile("package/dist/ranks/o200k_base.js")
            assert member is not None
            source = member.read().decode()
    data = json.loads(source[source.index("{") : source.rindex("}") + 1])
    ranks: dict[str, int] = {}
    for line in data["bpe_ranks"].split("\n"):
        if line:
            _, offset, *tokens = line.split(" ")
            for i, token in enumerate(tokens):
                ranks[token] = int(offset) + i
    blob = "".join(f"{t} {r}\n" for t, r in sorted(ranks.items(), key=lambda kv: kv[1])).encode()
    if hashlib.sha256(blob).hexdigest() != expected:
        raise RuntimeError("the ranks rebuilt from js-tiktoken do not match tiktoken's sha256")
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / hashlib.sha1(url.encode()).hexdigest()).write_bytes(blob)  # noqa: S324 - tiktoken's cache key


def encoder() -> tiktoken.Encoding:
    os.environ["TIKTOKEN_CACHE_DIR"] = str(CACHE)
    url, expected = _pinned()
    cached = CACHE / hashlib.sha1(url.encode()).hexdigest()  # noqa: S324
    if not cached.exists() or hashlib.sha256(cached.read_bytes()).hexdigest() != expected:
        try:
            return tiktoken.get_encoding("o200k_base")
        except Exception:
            _rebuild_from_npm(url, expected)
    return tiktoken.get_encoding("o200k_base")


def count(text: str) -> int:
    return len(_ENCODER.encode(text))


_ENCODER = encoder()
