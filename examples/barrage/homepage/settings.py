"""The HomePage's configuration, read once from the env names the seed's manifest uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class HomeSettings:
    kafka_server: str = "127.0.0.1:9092"
    kafka_topic: str = "barrage-info"
    kafka_user: str = ""
    kafka_password: str = ""
    kafka_security_protocol: str = "SASL_PLAINTEXT"  # used only when a user is set
    table_url: str = ""
    table_name: str = "barrage"
    lanes: int = 8
    send_rate: float = 20.0  # messages per second per sender; Concurrency 100 → 2,000/s
    sender_span: str = "sender"
    parent_span: str = "barrage-sender"
    linger_ms: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HomeSettings:
        return cls(
            # The seed's KAFKA_SERVER may be a list with empty entries (",,"): keep the real ones.
            kafka_server=",".join(s.strip() for s in env.get("KAFKA_SERVER", "").split(",") if s.strip())
            or "127.0.0.1:9092",
            kafka_topic=env.get("KAFKA_TOPIC") or "barrage-info",
            kafka_user=env.get("KAFKA_USER", ""),
            kafka_password=env.get("KAFKA_PWD", ""),
            kafka_security_protocol=env.get("KAFKA_SECURITY_PROTOCOL") or "SASL_PLAINTEXT",
            table_url=env.get("TABLE_URL", ""),
            table_name=env.get("TABLE_NAME") or "barrage",
            lanes=max(1, int(env.get("LANES") or 8)),
            send_rate=float(env.get("SEND_RATE") or 20.0),
            sender_span=env.get("TRACE_NAME1") or "sender",
            parent_span=env.get("PARENT_SPAN") or "barrage-sender",
            linger_ms=int(env.get("KAFKA_LINGER_MS") or 10),
        )
