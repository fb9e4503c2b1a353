"""How tests reach the S3 API server that ``tests/conftest.py`` starts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class S3Server:
    """A real S3 API server on loopback (moto's server mode) and how to reach it."""

    endpoint: str
    key: str = "mloop-test"
    secret: str = "mloop-test-secret"
    region: str = "us-east-1"

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables a process needs to use this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_DEFAULT_REGION": self.region,
        }

    @property
    def storage_options(self) -> dict[str, str]:
        """The same as fsspec (s3fs) options, the ``[storage]`` table of mloop.toml."""
        return {"endpoint_url": self.endpoint, "key": self.key, "secret": self.secret}

    def count_requests(self, method: str, url_contains: str) -> int:
        """How many ``method`` requests for a URL containing ``url_contains`` it served.

        Read from moto's request log with a pattern rather than line by line: the server
        appends concurrent requests' entries from several threads, so a large upload's
        entry may interleave with another's.
        """
        import re

        import httpx

        text = httpx.get(f"{self.endpoint}/moto-api/recorder/download-recording").text
        pattern = rf'"method": "{re.escape(method)}", "url": "[^"]*{re.escape(url_contains)}'
        return len(re.findall(pattern, text))
