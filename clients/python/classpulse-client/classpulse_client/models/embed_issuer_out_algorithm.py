from enum import StrEnum


class EmbedIssuerOutAlgorithm(StrEnum):
    ED25519 = "Ed25519"
    EDDSA = "EdDSA"
    ES256 = "ES256"
    HS256 = "HS256"
    RS256 = "RS256"

    def __str__(self) -> str:
        return str(self.value)
