from enum import StrEnum


class ApiKeyCameraKindType0(StrEnum):
    GALLERY = "gallery"
    PERSONAL = "personal"
    ROOM = "room"

    def __str__(self) -> str:
        return str(self.value)
