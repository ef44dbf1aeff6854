"""Message templates (SMS and e-mail) and their previews."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator, model_validator

from chalicelib.schemas.common import Channel, Input, Name, Output, Query, Slug

Subject = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Body = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
CustomerId = Annotated[str, StringConstraints(min_length=1, max_length=80)]
CouponCode = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ExtraKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
ExtraValue = Annotated[str, StringConstraints(max_length=500)] | int
BlockType = Literal["header", "text", "image", "button", "balance", "coupon", "divider", "footer"]
AssetId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
MAX_BLOCKS = 30


class EmailBlock(Input):
    """One block of an HTML e-mail; which fields a type uses is checked when the template is saved."""

    type: BlockType
    text: Annotated[str, StringConstraints(max_length=5000)] | None = Field(
        default=None, description="Jinja2 text: the title (header), paragraphs (text; a blank line starts a new "
                                  "one), the footer text (footer), the caption (balance, coupon).")
    asset_id: AssetId | None = Field(default=None, description="An image of the tenant's library (header logo, "
                                                                "image).")
    alt: Annotated[str, StringConstraints(max_length=300)] | None = Field(default=None,
                                                                          description="The image's alt text.")
    url: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        default=None, description="Link of a button or image: an https URL, or one made with Jinja2 "
                                  "(`{{ unsubscribe_url }}`); it must render to an http(s) URL.")
    label: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="Jinja2: the button's label.")


Blocks = Annotated[list[EmailBlock], Field(max_length=MAX_BLOCKS)]


def blocks_for(channel: str | None, blocks: list[EmailBlock] | None) -> list[EmailBlock] | None:
    """Blocks make the HTML part of an e-mail; an SMS has none (checked on `blocks`, so the error names it)."""
    if channel == "sms" and blocks is not None:
        raise ValueError("an SMS template has no blocks (HTML is for e-mail only)")
    return blocks


def body_or_blocks(body: str | None, blocks: list[EmailBlock] | None) -> None:
    """Without blocks the body is the message; with them it may be left out (derived from the blocks)."""
    if body is None and not blocks:
        raise ValueError("a template needs a body (or, for e-mail, blocks)")


def subject_for(channel: str | None, subject: str | None) -> str | None:
    """E-mail needs a subject, SMS has none (checked on `subject`, so the error names that field)."""
    if channel == "email" and subject is None:
        raise ValueError("an e-mail template needs a subject")
    if channel == "sms" and subject is not None:
        raise ValueError("an SMS template has no subject")
    return subject


class _Content(Input):
    name: Name
    channel: Channel
    subject: Subject | None = Field(default=None, validate_default=True,
                                    description="Jinja2; e-mail only, and required there.")
    body: Body | None = Field(default=None, description="Jinja2 text: variables first_name, last_name, balance, "
                              "tier, expiring_points, expiring_date, coupon_code, unsubscribe_url, tenant_name, "
                              "extra.<key>. For e-mail with `blocks`, the plain-text alternative; left out, it is "
                              "derived from the blocks.")
    blocks: Blocks | None = Field(default=None, description="E-mail only: the blocks of the HTML part, in order "
                                  "(at most 30). Without blocks an e-mail's HTML part is its body in the brand frame.")

    @field_validator("subject")
    @classmethod
    def _subject_for_email_only(cls, subject: str | None, info: ValidationInfo) -> str | None:
        return subject_for(info.data.get("channel"), subject)

    @field_validator("blocks")
    @classmethod
    def _blocks_for_email_only(cls, blocks: list[EmailBlock] | None, info: ValidationInfo) -> list[EmailBlock] | None:
        return blocks_for(info.data.get("channel"), blocks)

    @model_validator(mode="after")
    def _needs_content(self) -> _Content:
        body_or_blocks(self.body, self.blocks)  # a model-level error: the API names it `body`
        return self


class TemplateIn(_Content):
    id: Slug = Field(description="Chosen by the tenant, unique among its templates.")


class TemplateUpdate(_Content):
    version: int | None = Field(default=None, ge=1, description="The version you read: if the template changed "
                                "since, 409 `template_changed` instead of overwriting someone else's edit.")


class TemplateOut(Output):
    id: str
    name: str
    channel: Channel
    subject: str | None = None
    body: str
    blocks: list[EmailBlock] | None = Field(default=None, description="E-mail only: the blocks of the HTML part.")
    variables: list[str] = Field(description="The variables the template uses.")
    version: int
    created_at: datetime
    updated_at: datetime


class TemplateListQuery(Query):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=2048)


class PreviewIn(Input):
    customer_id: CustomerId | None = Field(default=None, description="Left out: the sample recipient.")
    coupon_code: CouponCode | None = None
    extra: dict[ExtraKey, ExtraValue] = Field(default_factory=dict, max_length=20)


class DraftPreviewIn(PreviewIn):
    channel: Channel
    subject: Subject | None = Field(default=None, validate_default=True)
    body: Body | None = None
    blocks: Blocks | None = None

    @field_validator("subject")
    @classmethod
    def _subject_for_email_only(cls, subject: str | None, info: ValidationInfo) -> str | None:
        return subject_for(info.data.get("channel"), subject)

    @field_validator("blocks")
    @classmethod
    def _blocks_for_email_only(cls, blocks: list[EmailBlock] | None, info: ValidationInfo) -> list[EmailBlock] | None:
        return blocks_for(info.data.get("channel"), blocks)

    @model_validator(mode="after")
    def _needs_content(self) -> DraftPreviewIn:
        body_or_blocks(self.body, self.blocks)  # a model-level error: the API names it `body`
        return self


class TestSendIn(Input):
    """A test send of a saved template to the signed-in person's own address."""

    customer_id: CustomerId | None = Field(default=None, description="Whose values fill the template; left out: "
                                                                      "the sample recipient.")
    coupon_code: CouponCode | None = None
    extra: dict[ExtraKey, ExtraValue] = Field(default_factory=dict, max_length=20)


class DraftTestSendIn(TestSendIn):
    """A test send of an unsaved e-mail template (the editor's current content)."""

    channel: Literal["email"] = "email"
    subject: Subject
    body: Body | None = None
    blocks: Blocks | None = None

    @model_validator(mode="after")
    def _needs_content(self) -> DraftTestSendIn:
        body_or_blocks(self.body, self.blocks)  # a model-level error: the API names it `body`
        return self


class TestSendOut(Output):
    to: str = Field(description="The signed-in person's own e-mail address.")
    subject: str = Field(description="The subject as sent, marked `[Test]`.")
    message_id: str


class PreviewOut(Output):
    subject: str | None = None
    body: str
    sms_segments: int | None = Field(default=None, description="SMS only: segments billed.")
    encoding: Literal["GSM-7", "UCS-2"] | None = Field(default=None, description="SMS only.")
    characters: int = Field(description="Characters in the body.")
    html: str | None = Field(default=None, description="E-mail only: the HTML part as it is sent.")
