from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    SERVICE = "service"
    STUDENT = "student"
    TEACHER = "teacher"
    VIEWER = "viewer"

    def __str__(self) -> str:
        return str(self.value)
