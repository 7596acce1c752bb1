"""What a flash-SMS warning is, how a gateway reports failure, and how texts are rendered.

Kept free of any I/O so the call path can build a :class:`FlashSms` without importing
aiohttp, and so the rendering rules are tested on their own.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Protocol

from fs_plugin.errors import ConfigError, FsPluginError
from fs_plugin.logs import mask_number
from fs_plugin.screening.model import CallFacts, Decision, Verdict

__all__ = [
    "BODY_PLACEHOLDERS",
    "DEFAULT_BODY",
    "DEFAULT_TEXT_TEMPLATE",
    "TEXT_PLACEHOLDERS",
    "FailureKind",
    "FlashSms",
    "SmsDeliveryError",
    "SmsGateway",
    "check_body",
    "check_template",
    "render_body",
    "render_text",
]

#: The message the callee reads. ``{label}`` is the policy's label text, which already
#: says what the number is suspected of (``疑似骚扰:房产中介``), so the template does
#: not repeat it.
DEFAULT_TEXT_TEMPLATE: Final = "【防骚扰提醒】来电{caller_masked}{label}，请谨慎接听"

#: Placeholders a message text template may use.
TEXT_PLACEHOLDERS: Final = frozenset({"callee", "caller", "caller_masked", "label", "call_uuid"})

#: Placeholders the JSON body template may use: the text ones plus the rendered ``{text}``.
BODY_PLACEHOLDERS: Final = TEXT_PLACEHOLDERS | {"text"}

#: The JSON body posted to the gateway unless configured otherwise. Every string in the
#: body (at any depth) is a template; other JSON values are sent unchanged.
DEFAULT_BODY: Final[Mapping[str, Any]] = {
    "to": "{callee}",
    "text": "{text}",
    "kind": "flash",
    "ref": "{call_uuid}",
}


@dataclass(frozen=True, slots=True)
class FlashSms:
    """One warning for one called user about one call.

    Numbers should be given in one normalised form (the service passes the domestic form
    of Chinese numbers and E.164 for others): the sender dedupes on ``(callee, caller)``
    exactly as given. ``created_at`` is epoch seconds from the
    plug-in's :class:`~fs_plugin.clock.Clock`; it fixes the day used for dedupe and the
    age after which a warning is no longer worth sending.
    """

    callee: str
    caller: str
    label: str
    call_uuid: str
    created_at: float

    @classmethod
    def for_call(
        cls,
        facts: CallFacts,
        decision: Decision,
        *,
        created_at: float,
        callee: str | None = None,
        caller: str | None = None,
        normalise: Callable[[str], str] | None = None,
    ) -> FlashSms | None:
        """The warning a WARN decision (or a labelled pass) calls for, or ``None``.

        A call that is blocked never rings, so it needs no warning; a call with no label
        has nothing to tell the callee. ``callee``/``caller`` override the raw numbers
        of ``facts`` (pass the normalised forms when the engine has them); ``normalise``
        turns the raw ones into the sender's one form, and runs only when a warning is
        due (it is not free, and most calls get none).
        """
        if decision.verdict is Verdict.BLOCK or not decision.label:
            return None
        if callee is None:
            callee = facts.destination if normalise is None else normalise(facts.destination)
        if caller is None:
            raw = facts.pai or facts.from_user
            caller = raw if normalise is None else normalise(raw)
        return cls(
            callee=callee,
            caller=caller,
            label=decision.label,
            call_uuid=facts.uuid,
            created_at=created_at,
        )


class FailureKind(StrEnum):
    """Why a delivery attempt failed, for retry decisions and metrics."""

    #: The gateway answered with a non-2xx status (see ``status``).
    STATUS = "status"
    #: No answer within the deadline.
    TIMEOUT = "timeout"
    #: The connection could not be made or broke (refused, reset, DNS).
    CONNECTION = "connection"


class SmsDeliveryError(FsPluginError):
    """A gateway could not deliver one message.

    ``retryable`` tells the sender whether another attempt may succeed (5xx, 429,
    timeouts, connection errors) or not (other 4xx: the request itself is wrong).
    ``retry_after_s`` carries the gateway's ``Retry-After`` when it sent one.
    """

    def __init__(
        self,
        kind: FailureKind,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after_s: float | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(f"{kind.value} status={status} {detail}".rstrip())
        self.kind = kind
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s
        self.detail = detail


class SmsGateway(Protocol):
    """An adapter that hands one message to an SMS centre.

    ``send`` returns when the gateway accepted the message and raises
    :class:`SmsDeliveryError` otherwise. The sender puts its own deadline around each
    call, so an adapter that hangs costs one attempt, not a worker.
    """

    async def send(self, sms: FlashSms) -> None: ...


def check_template(template: str, allowed: frozenset[str], *, key: str) -> None:
    """Raise :class:`ConfigError` unless ``template`` uses only ``allowed`` placeholders.

    Field names must be bare names without conversion or format spec: ``{callee.__class__}``
    or ``{label[0]}`` are refused, so a template cannot reach into objects.
    """
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"bad template: {exc}", key=key) from exc
    for _, name, spec, conv in parts:
        if name is None:
            continue
        if name not in allowed:
            raise ConfigError(
                f"unknown placeholder {{{name}}}; allowed: {', '.join(sorted(allowed))}",
                key=key,
            )
        if spec or conv:
            raise ConfigError(f"placeholder {{{name}}} takes no format spec", key=key)


def _values(sms: FlashSms, *, mask_caller: bool) -> dict[str, str]:
    return {
        "callee": sms.callee,
        "caller": sms.caller,
        "caller_masked": mask_number(sms.caller) if mask_caller else sms.caller,
        "label": sms.label,
        "call_uuid": sms.call_uuid,
    }


def render_text(template: str, sms: FlashSms, *, mask_caller: bool = True) -> str:
    """The text the callee reads (``template`` must have passed :func:`check_template`)."""
    return template.format_map(_values(sms, mask_caller=mask_caller))


def _render(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return node.format_map(values)
    if isinstance(node, Mapping):
        return {k: _render(v, values) for k, v in node.items()}
    if isinstance(node, Sequence):
        return [_render(v, values) for v in node]
    return node


def check_body(body: Mapping[str, Any], *, key: str) -> None:
    """Validate every string of a JSON body template (see :data:`BODY_PLACEHOLDERS`)."""

    def walk(node: Any, path: str) -> None:
        if isinstance(node, str):
            check_template(node, BODY_PLACEHOLDERS, key=path)
        elif isinstance(node, Mapping):
            for k, v in node.items():
                if not isinstance(k, str):
                    raise ConfigError("JSON object keys must be strings", key=path)
                walk(v, f"{path}.{k}")
        elif isinstance(node, Sequence):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")
        elif node is not None and not isinstance(node, bool | int | float):
            raise ConfigError(f"not a JSON value: {type(node).__name__}", key=path)

    walk(body, key)


def render_body(
    body: Mapping[str, Any], text_template: str, sms: FlashSms, *, mask_caller: bool = True
) -> dict[str, Any]:
    """The JSON object to post: ``body`` with every string rendered, ``{text}`` included."""
    values = _values(sms, mask_caller=mask_caller)
    values["text"] = text_template.format_map(values)
    rendered: dict[str, Any] = _render(body, values)
    return rendered
