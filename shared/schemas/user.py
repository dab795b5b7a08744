"""User and authentication schemas."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from shared.models import ROLES, TIERS
from shared.schemas.fields import TIMESTAMP

USERNAME = validate.Regexp(
    r"^[A-Za-z0-9_.-]{3,50}\Z", error="Must be 3-50 characters of letters, digits, _ . or -."
)


class RegisterSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    username = fields.String(required=True, validate=USERNAME)
    password = fields.String(required=True, validate=validate.Length(8, 128))

    @post_load
    def _lower_email(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["email"] = data["email"].lower()
        return data


class LoginSchema(Schema):
    # No format check: a malformed email simply matches no user (same 401 as a wrong one).
    email = fields.String(required=True, validate=validate.Length(1, 254))
    password = fields.String(required=True, validate=validate.Length(1, 1024))


class RefreshSchema(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(1, 4096))


class LogoutSchema(Schema):
    refresh_token = fields.String(validate=validate.Length(1, 4096))


class UserUpdateSchema(Schema):
    role = fields.String(validate=validate.OneOf(ROLES))
    tier = fields.String(validate=validate.OneOf(TIERS))

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **_: Any) -> None:
        if not data:
            raise ValidationError("Send at least one of role, tier.", "_schema")


class UserSchema(Schema):
    id = fields.Integer()
    email = fields.String()
    username = fields.String()
    role = fields.String()
    tier = fields.String()
    created_at = fields.AwareDateTime(format=TIMESTAMP)


class TokenPairSchema(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.Constant("Bearer")
    expires_in = fields.Integer()


register_schema = RegisterSchema()
login_schema = LoginSchema()
refresh_schema = RefreshSchema()
logout_schema = LogoutSchema()
user_update_schema = UserUpdateSchema()
user_schema = UserSchema()
token_pair_schema = TokenPairSchema()
