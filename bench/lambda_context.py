"""The Lambda context the benchmark's child processes hand to a handler: the attributes
Powertools reads from one (a tiny module: cold-start children import it before timing)."""

from __future__ import annotations


class BenchContext:
    """A Lambda context with a fixed function and ``aws_request_id``."""

    function_name = "tickerserve-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tickerserve-bench"

    def __init__(self, aws_request_id: str) -> None:
        self.aws_request_id = aws_request_id

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
