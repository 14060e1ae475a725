from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.embed_issuer_out_algorithm import EmbedIssuerOutAlgorithm
from ..types import UNSET, Unset

T = TypeVar("T", bound="EmbedIssuerOut")


@_attrs_define
class EmbedIssuerOut:
    """
    Attributes:
        algorithm (EmbedIssuerOutAlgorithm): how the platform signs: Ed25519 (EdDSA), ES256, RS256 or HS256
        issuer (str): the `iss` of the platform's tokens
        key_fingerprint (str): SHA-256 of the key as registered, its first 16 hex digits
        created_at_ms (int | Unset):  Default: 0.
        frame_origins (list[str] | Unset): origins allowed to show the dashboard in a frame (CSP frame-ancestors; an
            address stands for its origin); none: not in a frame
        teacher_id (None | str | Unset): if set, the issuer may only open classes of this teacher
    """

    algorithm: EmbedIssuerOutAlgorithm
    issuer: str
    key_fingerprint: str
    created_at_ms: int | Unset = 0
    frame_origins: list[str] | Unset = UNSET
    teacher_id: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        algorithm = self.algorithm.value

        issuer = self.issuer

        key_fingerprint = self.key_fingerprint

        created_at_ms = self.created_at_ms

        frame_origins: list[str] | Unset = UNSET
        if not isinstance(self.frame_origins, Unset):
            frame_origins = self.frame_origins

        teacher_id: None | str | Unset
        if isinstance(self.teacher_id, Unset):
            teacher_id = UNSET
        else:
            teacher_id = self.teacher_id

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "algorithm": algorithm,
                "issuer": issuer,
                "key_fingerprint": key_fingerprint,
            }
        )
        if created_at_ms is not UNSET:
            field_dict["created_at_ms"] = created_at_ms
        if frame_origins is not UNSET:
            field_dict["frame_origins"] = frame_origins
        if teacher_id is not UNSET:
            field_dict["teacher_id"] = teacher_id

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        algorithm = EmbedIssuerOutAlgorithm(d.pop("algorithm"))

        issuer = d.pop("issuer")

        key_fingerprint = d.pop("key_fingerprint")

        created_at_ms = d.pop("created_at_ms", UNSET)

        frame_origins = cast(list[str], d.pop("frame_origins", UNSET))

        def _parse_teacher_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        teacher_id = _parse_teacher_id(d.pop("teacher_id", UNSET))

        embed_issuer_out = cls(
            algorithm=algorithm,
            issuer=issuer,
            key_fingerprint=key_fingerprint,
            created_at_ms=created_at_ms,
            frame_origins=frame_origins,
            teacher_id=teacher_id,
        )

        embed_issuer_out.additional_properties = d
        return embed_issuer_out

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
