from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.lti_platform_keys_type_0 import LtiPlatformKeysType0


T = TypeVar("T", bound="LtiPlatform")


@_attrs_define
class LtiPlatform:
    """
    Attributes:
        auth_login_url (str): the platform's OIDC authorization endpoint (authentication request URL)
        auth_token_url (str): the platform's OAuth 2 token endpoint (for Names and Role Provisioning)
        client_id (str): the client id the platform gave ClassPulse
        deployment_ids (list[str]): deployment ids launches may carry (the platform shows them)
        issuer (str): the platform's `iss` (e.g. https://moodle.example.org)
        created_at_ms (int | Unset):  Default: 0.
        frame_origins (list[str] | Unset): origins that may show ClassPulse in a frame (the platform's own pages; an
            address stands for its origin); none: not in a frame
        keys (LtiPlatformKeysType0 | None | Unset): or the platform's public keys themselves, a JWKS ({"keys": [...]})
        keyset_url (None | str | Unset): the platform's public keyset (JWKS) URL
    """

    auth_login_url: str
    auth_token_url: str
    client_id: str
    deployment_ids: list[str]
    issuer: str
    created_at_ms: int | Unset = 0
    frame_origins: list[str] | Unset = UNSET
    keys: LtiPlatformKeysType0 | None | Unset = UNSET
    keyset_url: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.lti_platform_keys_type_0 import LtiPlatformKeysType0  # noqa: PLC0415

        auth_login_url = self.auth_login_url

        auth_token_url = self.auth_token_url

        client_id = self.client_id

        deployment_ids = self.deployment_ids

        issuer = self.issuer

        created_at_ms = self.created_at_ms

        frame_origins: list[str] | Unset = UNSET
        if not isinstance(self.frame_origins, Unset):
            frame_origins = self.frame_origins

        keys: dict[str, Any] | None | Unset
        if isinstance(self.keys, Unset):
            keys = UNSET
        elif isinstance(self.keys, LtiPlatformKeysType0):
            keys = self.keys.to_dict()
        else:
            keys = self.keys

        keyset_url: None | str | Unset
        if isinstance(self.keyset_url, Unset):
            keyset_url = UNSET
        else:
            keyset_url = self.keyset_url

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "auth_login_url": auth_login_url,
                "auth_token_url": auth_token_url,
                "client_id": client_id,
                "deployment_ids": deployment_ids,
                "issuer": issuer,
            }
        )
        if created_at_ms is not UNSET:
            field_dict["created_at_ms"] = created_at_ms
        if frame_origins is not UNSET:
            field_dict["frame_origins"] = frame_origins
        if keys is not UNSET:
            field_dict["keys"] = keys
        if keyset_url is not UNSET:
            field_dict["keyset_url"] = keyset_url

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.lti_platform_keys_type_0 import LtiPlatformKeysType0  # noqa: PLC0415

        d = dict(src_dict)
        auth_login_url = d.pop("auth_login_url")

        auth_token_url = d.pop("auth_token_url")

        client_id = d.pop("client_id")

        deployment_ids = cast(list[str], d.pop("deployment_ids"))

        issuer = d.pop("issuer")

        created_at_ms = d.pop("created_at_ms", UNSET)

        frame_origins = cast(list[str], d.pop("frame_origins", UNSET))

        def _parse_keys(data: object) -> LtiPlatformKeysType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                keys_type_0 = LtiPlatformKeysType0.from_dict(data)

                return keys_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(LtiPlatformKeysType0 | None | Unset, data)

        keys = _parse_keys(d.pop("keys", UNSET))

        def _parse_keyset_url(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        keyset_url = _parse_keyset_url(d.pop("keyset_url", UNSET))

        lti_platform = cls(
            auth_login_url=auth_login_url,
            auth_token_url=auth_token_url,
            client_id=client_id,
            deployment_ids=deployment_ids,
            issuer=issuer,
            created_at_ms=created_at_ms,
            frame_origins=frame_origins,
            keys=keys,
            keyset_url=keyset_url,
        )

        lti_platform.additional_properties = d
        return lti_platform

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
