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

    def requests(self) -> list[dict[str, object]]:
        """Every request the server has recorded since it started."""
        import httpx
        import orjson

        text = httpx.get(f"{self.endpoint}/moto-api/recorder/download-recording").text
        return [orjson.loads(line) for line in text.splitlines() if line.strip()]
