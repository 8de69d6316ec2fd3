"""What every provider's webhook shares: the signature gate, the receipt recorded with its
database effects in one transaction, the workflows told after the commit, and the ack.

Each provider module has one ``routing`` function that reads an event's payload into its
``Routing`` (event id and type, and its effects). The route calls it on the request's payload;
the sweeper (``api.sweeper``) calls it on a stored receipt's, so a receipt recorded while
Temporal was away is routed exactly as its webhook would have been.
"""

# No ``from __future__ import annotations`` here: pydantic resolves ``ProviderPayload``'s
# ``__pydantic_extra__`` annotation in each subclass's module, so it must not be a string.

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    GetJsonSchemaHandler,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from sqlmodel import Session
from temporalio.client import Client
from typing_extensions import TypeAliasType

from api.deps import Database, TemporalConnection
from api.errors import ApiError
from api.signatures import BadSignature
from api.temporal import confirm, tell
from models.errors import NotFound
from models.rules.contacts import normalize_phone
from models.rules.messages import MISSED_CALL
from models.rules.orgs import org_settings
from models.schemas import Documented, DocumentedAs
from models.services.inbound import DeliveryReport, InboundCall, opt_out_reach, record_inbound_call
from models.services.webhooks import WebhookRecorded, mark_routed, record_event
from models.tables import Lead, Message, Org
from models.values import Channel, WebhookProvider, consent_channel
from workflows.lead import ConsentChanged, LeadWorkflow, ReplyReceived

log = logging.getLogger("keepwarm.webhooks")
T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _nul_free(value: Any) -> Any:
    """Refuse NUL anywhere in a JSON document's keys and strings."""
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _nul_free(item)
    elif isinstance(value, list):
        for item in value:
            _nul_free(item)
    return value


_NO_NUL = "^[^\\x00]*$"
#: Provider text as keepwarm stores it: anything but NUL, which PostgreSQL can't hold.
NulFree = Annotated[str, AfterValidator(_no_nul), Documented({"pattern": _NO_NUL})]
#: JSON Schema files a pattern on keys under ``patternProperties``: other keys are refused.
_EXACT_KEYS = Documented({"additionalProperties": False})
#: How the OpenAPI document states ``JsonValue`` (validated by ``_nul_free``, not by this).
ProviderJson = TypeAliasType(
    "ProviderJson", "NulFree | float | bool | list[ProviderJson] | _Object | None"
)
_Object = Annotated[dict[NulFree, ProviderJson], _EXACT_KEYS]
#: Any JSON value without NUL in its strings or keys: what providers send beyond the fields
#: keepwarm reads (they add fields; keepwarm ignores the ones it doesn't know).
JsonValue = Annotated[Any, AfterValidator(_nul_free), DocumentedAs(ProviderJson)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_nul_free), DocumentedAs(_Object)]


class ProviderPayload(BaseModel):
    """A provider's document: the fields keepwarm reads are declared, any others are kept
    (and must be NUL-free JSON too)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, JsonValue]

    @model_validator(mode="before")
    @classmethod
    def _keys_nul_free(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                _no_nul(str(key))
        return data

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The model's schema, its keys NUL-free too."""
        schema = handler(core_schema)
        handler.resolve_ref_schema(schema)["propertyNames"] = {"pattern": _NO_NUL}
        return schema


def validated(model: type[ModelT], data: object) -> ModelT:
    """``data`` as ``model``; 422 in the error envelope, naming each bad field, if it isn't."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from None


class WebhookAck(BaseModel):
    """What every verified webhook gets back."""

    received: bool = True
    duplicate: bool


class Rejections:
    """Webhooks refused for their signature, per provider and org (this process)."""

    def __init__(self) -> None:
        """Start at zero."""
        self.counts: Counter[tuple[str, str]] = Counter()

    def reject(self, provider: WebhookProvider, org_id: str, reason: BadSignature) -> ApiError:
        """Count and log a refusal; the 401 to raise."""
        self.counts[(provider.value, org_id)] += 1
        log.warning("rejected %s webhook for org %s: %s", provider.value, org_id, reason)
        return ApiError(401, f"Webhook signature invalid: {reason}")


def verified(request: Request, provider: WebhookProvider, org_id: str, check: Callable[[], T]) -> T:
    """``check()`` (a signature check); a bad signature is counted, logged and answered 401."""
    try:
        return check()
    except BadSignature as bad:
        counter: Rejections = request.app.state.webhook_rejections
        raise counter.reject(provider, org_id, bad) from None


def plain(secret: SecretStr | None) -> str | None:
    """A secret setting's value, if set."""
    return secret.get_secret_value() if secret else None


def object_of(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


#: What to tell Temporal after the commit.
Tell = Callable[[Client], Awaitable[None]]
#: What to tell Temporal after the commit, if anything.
Notify = Tell | None
#: An event's database effects, applied in the transaction that records its receipt (and
#: again, changing nothing more, whenever an unrouted receipt is routed again); what to tell
#: Temporal after the commit.
Apply = Callable[[Session, Org], Notify]


@dataclass(frozen=True, kw_only=True)
class Routing:
    """What a verified event asks of keepwarm, read from its payload alone."""

    #: The provider's id of the event; ``None`` when the request, not the payload, names it
    #: (Resend's ``svix-id`` header).
    event_id: str | None
    event_type: str
    apply: Apply


class Router(Protocol):
    """A provider's ``routing``: an event's payload, as the route received it and the
    receipt stores it, read into its ``Routing``; ``None`` for an event keepwarm ignores.
    Invalid input raises (422 for the route)."""

    def __call__(self, payload: dict[str, Any], *, database: Database) -> Routing | None:
        """``payload``'s routing (``database``: where a text that opens a lead records it)."""
        ...


async def handle(
    *,
    database: Database,
    temporal: TemporalConnection,
    org_id: str,
    provider: WebhookProvider,
    payload: dict[str, Any],
    routing: Routing | None,
    event_id: str = "",
) -> WebhookAck:
    """Record the receipt and apply its database effects in one transaction, then notify.

    ``routing`` ``None`` (an event keepwarm ignores) records nothing; ``event_id`` is the
    event's id when its payload doesn't name it.
    """
    if routing is None:
        return WebhookAck(duplicate=False)
    try:
        recorded: WebhookRecorded[Tell] = await database.run(
            record_event,
            org_id=org_id,
            provider=provider,
            event_id=routing.event_id if routing.event_id is not None else event_id,
            event_type=routing.event_type,
            payload=payload,
            apply=routing.apply,
        )
    except NotFound:
        raise ApiError(404, "No such org.") from None
    if recorded.effect is not None:
        await recorded.effect(await temporal.client())
        await database.run(mark_routed, org_id=org_id, receipt_id=recorded.receipt_id)
    return WebhookAck(duplicate=not recorded.new)


def inbound_call(
    *,
    provider: WebhookProvider,
    event_id: str,
    caller: str,
    call: Callable[[str], InboundCall],
    accept: Callable[[Org], bool] = lambda org: True,
) -> Routing:
    """A call to the org that ended (through Twilio or Vapi): on the caller's thread, told to
    their open lead like a text (its sequence and call loop stop), and, if nobody picked up,
    texted back once."""

    def apply(session: Session, org: Org) -> Notify:
        if not accept(org):
            return None
        region = org_settings(org).default_region
        phone = normalize_phone(caller, region=region)
        if phone is None:
            # A withheld or unknown number: nobody to answer (the number is not logged).
            log.info("inbound %s call to org %s has no caller number", provider.value, org.id)
            return None
        ended = call(phone)
        inbound = record_inbound_call(session, org_id=org.id, call=ended)
        workflow_id = inbound.workflow_id
        if workflow_id is None and not ended.missed:
            return None
        reply = ReplyReceived(message_id=inbound.message_id, channel=Channel.VOICE)

        async def notify(client: Client) -> None:
            if workflow_id is not None:
                # A call from a lead that has just closed is on its thread; nothing to open.
                await tell(client, workflow_id, LeadWorkflow.message_received, reply)
            if ended.missed:
                await confirm(
                    client, org_id=org.id, message_id=inbound.message_id, kind=MISSED_CALL
                )

        return notify

    return Routing(event_id=event_id, event_type="inbound_call", apply=apply)


def revoked(
    session: Session, *, org_id: str, report: DeliveryReport, message: Message | None
) -> Notify:
    """A report that withdrew consent (a bounce, a complaint, Twilio 21610) is told to the
    lead at once, like a STOP: one reachable on no channel any more ends."""
    if not report.revoke_consent or message is None or message.lead_id is None:
        return None
    lead = session.get(Lead, message.lead_id)
    if lead is None:
        return None
    reach = opt_out_reach(session, org_id=org_id, contact_id=lead.contact_id)
    if reach.workflow_id is None:
        return None
    workflow_id = reach.workflow_id
    change = ConsentChanged(
        channel=consent_channel(Channel(message.channel)),
        granted=False,
        opted_out_everywhere=reach.everywhere,
    )

    async def notify(client: Client) -> None:
        await tell(client, workflow_id, LeadWorkflow.consent_changed, change)

    return notify
