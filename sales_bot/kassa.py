"""YooKassa through its official SDK (>= 3), off the event loop, with an outer timeout.

The SDK is blocking (`requests`) and keeps its configuration in class attributes, so one
`YooKassa` per process configures it once (`YOOKASSA_API_URL` included) and every call runs in
`asyncio.to_thread` under `asyncio.wait_for`. Answers become `PaymentView`/`RefundView`/
`ReceiptView`.

A failure that may pass (5xx, 429, a timeout, a network error) is retried in-process a few
times with a short jittered backoff, within `retry_budget` seconds, before the caller falls back
to its own slower retry (the webhook's periodic check): a brief YooKassa hiccup then costs
seconds, not a check interval. Refusals (4xx) are never retried. Creating a payment is retried
with the same idempotence key, so YooKassa creates it once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from core.retry import backoff
from sales_bot.orders import PaymentView, RefundView, SavedMethod

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_ATTEMPTS = 4  # calls in all, the first one included
RETRY_BASE_DELAY = 0.5  # seconds before the second attempt; doubling, jittered
RETRY_MAX_DELAY = 4.0
RETRY_BUDGET = 10.0  # no new attempt starts later than this after the first one


class KassaError(Exception):
    """YooKassa refused the request (4xx): retrying the same request will not help."""


class KassaUnavailableError(KassaError):
    """YooKassa did not answer in time or failed (5xx, network): retry later."""


@dataclass(frozen=True, slots=True)
class PaymentDraft:
    """What a payment is created from; the amount comes from the plan."""

    order_id: str
    idempotence_key: str
    plan: str
    kind: str
    amount: Decimal
    currency: str
    description: str  # <= 128 characters (YooKassa's limit)
    receipt_item: str  # <= 128 characters
    email: str
    save_method: bool = False  # the owner agreed to auto-renewal: YooKassa saves the card
    method_id: str | None = field(default=None, repr=False)  # charge this saved method
    return_url: str | None = None  # where YooKassa's page sends the payer back (else the bot's)


@dataclass(frozen=True, slots=True)
class RefundDraft:
    """A full refund of an order's payment, with its 54-FZ refund receipt."""

    payment_id: str
    idempotence_key: str
    amount: Decimal
    currency: str
    description: str  # <= 250 characters
    receipt_item: str  # <= 128 characters
    email: str


@dataclass(frozen=True, slots=True)
class ReceiptItem:
    description: str
    quantity: Decimal
    amount: Decimal  # the price of one


@dataclass(frozen=True, slots=True)
class ReceiptView:
    """A 54-FZ receipt as YooKassa reports it: a payment's or a refund's; the fiscal attributes
    (ФН, ФД, ФП) and the moment are there once the receipt is registered (`succeeded`)."""

    id: str
    type: str  # payment | refund
    status: str  # pending | succeeded | canceled
    items: tuple[ReceiptItem, ...]
    fiscal_storage_number: str | None = None  # ФН
    fiscal_document_number: str | None = None  # ФД
    fiscal_attribute: str | None = None  # ФП
    registered_at: datetime | None = None

    @property
    def total(self) -> Decimal:
        return sum((i.amount * i.quantity for i in self.items), Decimal("0")).quantize(
            Decimal("0.01")
        )


class PaymentGateway(Protocol):
    async def create_payment(self, draft: PaymentDraft) -> PaymentView: ...

    async def get_payment(self, payment_id: str) -> PaymentView: ...

    async def get_refund(self, refund_id: str) -> RefundView: ...

    async def create_refund(self, draft: RefundDraft) -> RefundView: ...

    async def receipts(self, payment_id: str, *, refunded: bool = False) -> list[ReceiptView]: ...


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def saved_method(raw: Any) -> SavedMethod | None:
    """The payment's method when YooKassa saved it for later charges (a bank card's mask and
    expiry with it), else None."""
    method = getattr(raw, "payment_method", None)
    if method is None or not getattr(method, "saved", False) or not getattr(method, "id", None):
        return None
    card = getattr(method, "card", None)
    last4 = str(card.last4) if card is not None and card.last4 else None
    expiry = None
    if card is not None and card.expiry_month and card.expiry_year:
        expiry = f"{int(card.expiry_month):02d}/{card.expiry_year}"
    return SavedMethod(id=str(method.id), last4=last4, expiry=expiry)


def payment_view(raw: Any) -> PaymentView:
    """A PaymentView from the SDK's PaymentResponse."""
    refunded = raw.refunded_amount
    confirmation = raw.confirmation
    metadata = raw.metadata or {}
    details = getattr(raw, "cancellation_details", None)
    return PaymentView(
        id=str(raw.id),
        status=str(raw.status),
        paid=bool(raw.paid),
        amount=_money(raw.amount.value),
        currency=str(raw.amount.currency),
        metadata={str(k): str(v) for k, v in dict(metadata).items()},
        refunded_amount=_money(refunded.value) if refunded is not None else Decimal("0.00"),
        confirmation_url=getattr(confirmation, "confirmation_url", None) if confirmation else None,
        saved_method=saved_method(raw),
        cancel_reason=str(details.reason) if details is not None and details.reason else None,
    )


def refund_view(raw: Any) -> RefundView:
    return RefundView(
        id=str(raw.id),
        payment_id=str(raw.payment_id),
        status=str(raw.status),
        amount=_money(raw.amount.value),
        currency=str(raw.amount.currency),
    )


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "", "None") else None


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime) or value in (None, ""):
        return value or None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def receipt_view(raw: Any) -> ReceiptView:
    """A ReceiptView from the SDK's ReceiptResponse."""
    items = tuple(
        ReceiptItem(
            description=str(item.description or ""),
            quantity=Decimal(str(item.quantity or "1")),
            amount=_money(item.amount.value),
        )
        for item in raw.items or []
    )
    return ReceiptView(
        id=str(raw.id),
        type=str(raw.type),
        status=str(raw.status),
        items=items,
        fiscal_storage_number=_text(raw.fiscal_storage_number),
        fiscal_document_number=_text(raw.fiscal_document_number),
        fiscal_attribute=_text(raw.fiscal_attribute),
        registered_at=_moment(raw.registered_at),
    )


def _receipt(
    email: str, item: str, amount: Decimal, currency: str, vat_code: int
) -> dict[str, Any]:
    value = f"{amount:.2f}"
    return {
        "customer": {"email": email},
        "items": [
            {
                "description": item[:128],
                "quantity": "1.00",
                "amount": {"value": value, "currency": currency},
                "vat_code": vat_code,
                "payment_mode": "full_payment",
                "payment_subject": "service",
            }
        ],
    }


def refund_request(draft: RefundDraft, *, vat_code: int) -> dict[str, Any]:
    """The body of POST /refunds: the whole amount, with the refund receipt."""
    return {
        "payment_id": draft.payment_id,
        "amount": {"value": f"{draft.amount:.2f}", "currency": draft.currency},
        "description": draft.description[:250],
        "receipt": _receipt(draft.email, draft.receipt_item, draft.amount, draft.currency,
                            vat_code),
    }  # fmt: skip


def payment_request(draft: PaymentDraft, *, vat_code: int, return_url: str) -> dict[str, Any]:
    """The body of POST /payments: metadata and a 54-FZ receipt always; a redirect confirmation
    (the owner pays on YooKassa's page, saving the card when they agreed to auto-renewal), or a
    saved method's id (a renewal: charged without the owner)."""
    value = f"{draft.amount:.2f}"
    how: dict[str, Any]
    if draft.method_id is not None:
        how = {"payment_method_id": draft.method_id}
    else:
        how = {"confirmation": {"type": "redirect", "return_url": return_url}}
        if draft.save_method:
            how["save_payment_method"] = True
    return {
        "amount": {"value": value, "currency": draft.currency},
        "capture": True,
        **how,
        "description": draft.description[:128],
        "metadata": {"order_id": draft.order_id, "plan": draft.plan, "kind": draft.kind},
        "receipt": _receipt(draft.email, draft.receipt_item, draft.amount, draft.currency,
                            vat_code),
    }  # fmt: skip


class YooKassa:
    """PaymentGateway over the `yookassa` SDK."""

    def __init__(
        self,
        shop_id: str,
        secret_key: str,
        *,
        api_url: str,
        vat_code: int,
        return_url: str,
        timeout: float = 20.0,
        retry_attempts: int = RETRY_ATTEMPTS,
        retry_base_delay: float = RETRY_BASE_DELAY,
        retry_budget: float = RETRY_BUDGET,
    ) -> None:
        from yookassa import Configuration

        # One HTTP attempt per SDK call: the retries are ours (async, jittered, bounded).
        Configuration.configure(shop_id, secret_key, api_url=api_url.rstrip("/"), max_attempts=1)
        self.vat_code = vat_code
        self.return_url = return_url
        self.timeout = timeout
        self.retry_attempts = max(retry_attempts, 1)
        self.retry_base_delay = retry_base_delay
        self.retry_budget = retry_budget

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        """`fn` off the loop; retried while YooKassa is unavailable, within the budget."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_budget
        failures = 0
        while True:
            try:
                return await self._once(what, fn)
            except KassaUnavailableError as exc:
                failures += 1
                delay = backoff(failures, self.retry_base_delay, RETRY_MAX_DELAY)
                if failures >= self.retry_attempts or loop.time() + delay > deadline:
                    raise
                log.warning("%s; attempt %d, retrying in %.1f s", exc, failures + 1, delay)
                await asyncio.sleep(delay)

    async def _once(self, what: str, fn: Callable[[], T]) -> T:
        from yookassa.domain.exceptions import ApiError

        try:
            return await asyncio.wait_for(asyncio.to_thread(fn), self.timeout)
        except TimeoutError:
            raise KassaUnavailableError(
                f"YooKassa did not answer {what} in {self.timeout}s"
            ) from None
        except ApiError as exc:
            status = int(getattr(exc, "HTTP_CODE", 0) or 0)
            content = exc.content or {}
            detail = f"{content.get('code', '')} {content.get('description', '')}".strip()
            message = f"YooKassa refused {what} ({status or 'error'}: {detail or 'no details'})"
            if status in (400, 401, 403, 404, 405, 415):
                raise KassaError(message) from None
            raise KassaUnavailableError(message) from None
        except (OSError, ValueError, TypeError) as exc:  # requests errors are OSErrors
            raise KassaUnavailableError(f"YooKassa {what} failed: {type(exc).__name__}") from None
        except Exception as exc:  # the SDK raises odd things on garbage answers
            raise KassaUnavailableError(f"YooKassa {what} failed: {type(exc).__name__}") from None

    async def create_payment(self, draft: PaymentDraft) -> PaymentView:
        from yookassa import Payment

        body = payment_request(
            draft, vat_code=self.vat_code, return_url=draft.return_url or self.return_url
        )
        raw = await self._call(
            "create payment", lambda: Payment.create(body, draft.idempotence_key)
        )
        return payment_view(raw)

    async def get_payment(self, payment_id: str) -> PaymentView:
        from yookassa import Payment

        return payment_view(await self._call("get payment", lambda: Payment.find_one(payment_id)))

    async def get_refund(self, refund_id: str) -> RefundView:
        from yookassa import Refund

        return refund_view(await self._call("get refund", lambda: Refund.find_one(refund_id)))

    async def create_refund(self, draft: RefundDraft) -> RefundView:
        """Refund a payment in full, once per idempotence key (a retry returns that refund)."""
        from yookassa import Refund

        body = refund_request(draft, vat_code=self.vat_code)
        raw = await self._call("create refund", lambda: Refund.create(body, draft.idempotence_key))
        return refund_view(raw)

    async def receipts(self, payment_id: str, *, refunded: bool = False) -> list[ReceiptView]:
        """The payment's receipts (`GET /receipts?payment_id=`), and with `refunded` those of its
        refunds too (`GET /refunds?payment_id=`, then `GET /receipts?refund_id=` each)."""
        from yookassa import Receipt, Refund

        found = await self._call("list receipts", lambda: Receipt.list({"payment_id": payment_id}))
        views = [receipt_view(r) for r in found.items or []]
        if refunded:
            refunds = await self._call(
                "list refunds", lambda: Refund.list({"payment_id": payment_id})
            )
            for refund in refunds.items or []:
                query = {"refund_id": str(refund.id)}
                of_refund = await self._call(
                    "list receipts", functools.partial(Receipt.list, query)
                )
                views += [receipt_view(r) for r in of_refund.items or []]
        return views
