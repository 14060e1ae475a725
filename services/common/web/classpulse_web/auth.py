"""API keys with a role and a scope, shared by every HTTP service.

- admin: manages classes and keys, reads everything;
- teacher: reads only the classes whose `teacher` is the key's teacher id;
- service: may only post frames (ingest);
- student: may only post frames of one class (`class_id`), from the student page; short-lived (`expires_at_ms`);
- viewer: may only read one class (`class_id`), from a dashboard embedded by a platform; short-lived, never issued
  by hand (the API exchanges a platform's viewer token for one: classpulse_api.embed).

A key is `cpk_<id>_<secret>`: the id finds the record, the secret is checked against its SHA-256 with a constant-time
comparison. Only the hash is stored (in Redis, `apikey:<id>`); keys are 256-bit random, so a fast hash is enough
(no password stretching needed for secrets that cannot be guessed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from enum import StrEnum

from pydantic import BaseModel, Field

from classpulse_core.schemas import CameraKind


class Role(StrEnum):
    ADMIN = "admin"
    TEACHER = "teacher"
    SERVICE = "service"
    STUDENT = "student"
    VIEWER = "viewer"


class ApiKey(BaseModel):
    key_id: str
    role: Role
    name: str = ""
    teacher_id: str | None = Field(None, description="for teacher keys: the teacher whose classes it reads")
    class_id: str | None = Field(None, description="for student keys: the one class whose frames it may post; for viewer keys: the one class it reads")
    camera_kind: CameraKind | None = Field(
        None, description="for student keys: what the page's camera shows (personal, the default: the student alone; room; gallery)"
    )
    created_at_ms: int = 0
    expires_at_ms: int | None = Field(None, description="when the key stops working; None: until revoked")

    def can_read_class(self, class_id: str, class_teacher: str | None) -> bool:
        if self.role == Role.VIEWER:
            return class_id == self.class_id
        return self.role == Role.ADMIN or (self.role == Role.TEACHER and class_teacher is not None and class_teacher == self.teacher_id)

    def can_post_frames(self, class_id: str) -> bool:
        return self.role in (Role.ADMIN, Role.SERVICE) or (self.role == Role.STUDENT and self.class_id == class_id)


class InvalidKey(Exception):
    pass


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key() -> tuple[str, str, str]:
    """(key_id, full key to hand out once, hash to store)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, f"cpk_{key_id}_{secret}", hash_secret(secret)


def split_key(presented: str) -> tuple[str, str]:
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "cpk" or not parts[1] or not parts[2]:
        raise InvalidKey("malformed API key")
    return parts[1], parts[2]


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def now_ms() -> int:
    return int(time.time() * 1000)
