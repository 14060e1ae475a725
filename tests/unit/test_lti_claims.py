"""The LTI launch's checks that need no server: roles, audiences, the course's class id, a platform's registration,
and every refusal of an id_token's claims with its reason."""

from __future__ import annotations

import time

import pytest
from joserfc.jwk import RSAKey
from pydantic import ValidationError

from classpulse_api.lti import (
    DEEP_LINKING_REQUEST,
    LTI,
    RESOURCE_LINK_REQUEST,
    Launch,
    LaunchVerifier,
    LoginState,
    LtiPlatform,
    LtiRefused,
    audiences,
    is_instructor,
    is_learner,
)

pytestmark = pytest.mark.unit

ISSUER = "https://moodle.example.org"
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"


def platform(**changes: object) -> LtiPlatform:
    fields = {"issuer": ISSUER, "client_id": "cp", "deployment_ids": ["d1"], "auth_login_url": f"{ISSUER}/auth",
              "auth_token_url": f"{ISSUER}/token", "keyset_url": f"{ISSUER}/jwks", **changes}
    return LtiPlatform(**fields)


def claims(**changes: object) -> dict:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": "cp", "sub": "u1", "iat": now, "exp": now + 300, "nonce": "n1",
            LTI + "deployment_id": "d1", LTI + "version": "1.3.0", LTI + "message_type": RESOURCE_LINK_REQUEST,
            LTI + "roles": [f"{MEMBERSHIP}#Instructor"], LTI + "context": {"id": "course-1"}}
    return {name: value for name, value in {**base, **changes}.items() if value is not None}


@pytest.mark.parametrize(
    ("role", "instructor", "learner"),
    [
        (f"{MEMBERSHIP}#Instructor", True, False),
        (f"{MEMBERSHIP}/Instructor#TeachingAssistant", True, False),
        ("Instructor", True, False),
        (f"{MEMBERSHIP}#Administrator", True, False),
        (f"{MEMBERSHIP}#Learner", False, True),
        (f"{MEMBERSHIP}/Learner#NonCreditLearner", False, True),
        ("http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor", False, False),  # not a course role
        (f"{MEMBERSHIP}#Mentor", False, False),
    ],
)
def test_course_roles(role: str, instructor: bool, learner: bool) -> None:
    assert (is_instructor(role), is_learner(role)) == (instructor, learner)


def test_audiences_are_a_string_or_a_list() -> None:
    assert audiences({"aud": "cp"}) == ["cp"]
    assert audiences({"aud": ["cp", "other", 3]}) == ["cp", "other"]
    assert audiences({}) == []


def test_a_course_has_one_class_per_deployment() -> None:
    first = Launch(platform(), claims()).class_id()
    assert first == Launch(platform(), claims(**{LTI + "context": {"id": "course-1", "title": "renamed"}})).class_id()
    assert first != Launch(platform(), claims(**{LTI + "context": {"id": "course-2"}})).class_id()
    assert first != Launch(platform(deployment_ids=["d1", "d2"]), claims(**{LTI + "deployment_id": "d2"})).class_id()
    with pytest.raises(LtiRefused, match="names no course"):
        Launch(platform(), claims(**{LTI + "context": None})).class_id()


def test_a_registration_gives_the_platforms_public_keys_one_way() -> None:
    key = RSAKey.generate_key(2048, auto_kid=True)
    assert platform(keyset_url=None, keys={"keys": [key.as_dict(private=False)]}).keys is not None
    for changes in ({"keys": {"keys": [key.as_dict(private=False)]}}, {"keyset_url": None},
                    {"keyset_url": None, "keys": {"keys": [key.as_dict(private=True)]}}, {"keyset_url": None, "keys": {"k": 1}}):
        with pytest.raises(ValidationError):
            platform(**changes)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, None),
        ({LTI + "message_type": DEEP_LINKING_REQUEST}, None),
        ({"aud": ["cp", "other"], "azp": "cp"}, None),
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"iss": "https://elsewhere.example.org"}, "invalid_claims"),
        ({"nonce": None}, "invalid_claims"),
        ({"aud": "someone-else"}, "wrong_audience"),
        ({"aud": ["cp", "other"]}, "wrong_audience"),
        ({"azp": "another-tool"}, "wrong_audience"),  # one audience, yet another authorized party: not for ClassPulse
        ({"azp": "cp"}, None),
        ({"nonce": "n2"}, "nonce_mismatch"),
        ({LTI + "deployment_id": "d9"}, "unknown_deployment"),
        ({LTI + "version": "1.1"}, "unsupported_version"),
        ({LTI + "message_type": "LtiSubmissionReviewRequest"}, "unsupported_message"),
    ],
)
def test_the_id_tokens_claims(changes: dict, reason: str | None) -> None:
    login = LoginState(ISSUER, "cp", "n1", expires_at_s=int(time.time()) + 600)
    if reason is None:
        LaunchVerifier._check_claims(claims(**changes), platform(), login)
        return
    with pytest.raises(LtiRefused) as refused:
        LaunchVerifier._check_claims(claims(**changes), platform(), login)
    assert refused.value.reason == reason and refused.value.status in (400, 401, 403)


def test_a_frame_origin_given_as_a_page_address_is_its_origin() -> None:
    # frame-ancestors matches origins only: with the path, no page of the platform could frame ClassPulse.
    registered = platform(frame_origins=[f"{ISSUER}/moodle/mod/lti/view.php?id=7", "https://lms.example.org:8443/;sandbox"])
    assert [str(origin) for origin in registered.frame_origins] == [f"{ISSUER}/", "https://lms.example.org:8443/"]
