"""The plain rules: plans, forms, the order state machine, sealing tokens."""

from __future__ import annotations

from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from sales_bot.forms import clean_business_name, clean_email, extract_token
from sales_bot.orders import (
    Action,
    OrderFacts,
    OrderKind,
    OrderStatus,
    PaymentView,
    Verdict,
    judge,
    transition,
)
from sales_bot.plans import PlansError, format_rub, load_plans, parse_plans
from sales_bot.vault import Vault, VaultError

ORDER = OrderFacts(
    "ord_" + "a" * 24, OrderKind.NEW, OrderStatus.PENDING, "start", Decimal("990.00"), "RUB", None
)


def payment(**kw: object) -> PaymentView:
    values: dict[str, object] = {
        "id": "p1",
        "status": "succeeded",
        "paid": True,
        "amount": Decimal("990.00"),
        "currency": "RUB",
        "metadata": {"order_id": ORDER.order_id, "plan": "start"},
    }
    values.update(kw)
    return PaymentView(**values)  # type: ignore[arg-type]


def test_builtin_plans_and_prices() -> None:
    plans = load_plans()
    assert [p.id for p in plans] == ["start", "business", "business_year"]
    assert plans[0].price == Decimal("990.00") and plans[0].period_days == 30
    assert plans[1].ai_assistant and not plans[0].ai_assistant
    assert plans[2].monthly_price == Decimal("2046.58")
    assert format_rub(Decimal("24900.00")) == "24\u00a0900\u00a0₽"
    assert format_rub(Decimal("990.50")) == "990,50\u00a0₽"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{", "not valid JSON"),
        ('{"plans": []}', "at least one plan"),
        ('{"plans": [{"id": "a", "title": "A", "price_rub": 9.9, "period_days": 30}]}', "float"),
        ('{"plans": [{"id": "a", "title": "A", "price_rub": "9.999", "period_days": 30}]}', "two decimals"),
        ('{"plans": [{"id": "a", "title": "A", "price_rub": "-1", "period_days": 30}]}', "positive"),
        ('{"plans": [{"id": "A!", "title": "A", "price_rub": "1", "period_days": 30}]}', "id must"),
        ('{"plans": [{"id": "a", "title": "A", "price_rub": "1", "period_days": 0}]}', "period_days"),
        ('{"plans": [{"id": "a", "title": "A", "price_rub": "1", "period_days": 30, "features": ["x"]}]}', "features"),
        ('{"plans": [{"id": "a", "title": "A", "price_rub": "1", "period_days": 1},'
         ' {"id": "a", "title": "B", "price_rub": "1", "period_days": 1}]}', "unique"),
    ],
)  # fmt: skip
def test_bad_plans_are_explained(text: str, problem: str) -> None:
    with pytest.raises(PlansError, match=problem):
        parse_plans(text)


def test_forms() -> None:
    assert clean_email("  Name.Surname+tag@Mail.RU ") == "Name.Surname+tag@mail.ru"
    for bad in (
        "",
        "a@b",
        "a@@b.ru",
        "a b@c.ru",
        "a@b..ru",
        "@b.ru",
        "a@-b.ru",
        "x" * 300 + "@a.ru",
    ):
        assert clean_email(bad) is None, bad
    assert clean_business_name("  Салон   «Ромашка» ") == "Салон «Ромашка»"
    assert clean_business_name("/start") is None and clean_business_name("x" * 101) is None
    token = "1234567:made-up-token-for-the-extract-test"
    assert extract_token(f"вот токен `{token}` спасибо") == token
    assert extract_token("123:short") is None


def test_judge_checks_the_order_before_the_status() -> None:
    assert judge(ORDER, payment())[0] is Verdict.PAID
    assert judge(ORDER, payment(status="pending", paid=False))[0] is Verdict.WAITING
    assert judge(ORDER, payment(status="canceled", paid=False))[0] is Verdict.CANCELED
    assert judge(ORDER, payment(refunded_amount=Decimal("990.00")))[0] is Verdict.REFUNDED
    assert judge(ORDER, payment(amount=Decimal("1.00")))[0] is Verdict.MISMATCH
    assert judge(ORDER, payment(currency="USD"))[0] is Verdict.MISMATCH
    assert judge(ORDER, payment(metadata={"order_id": "ord_other"}))[0] is Verdict.MISMATCH
    assert (
        judge(ORDER, payment(metadata={"order_id": ORDER.order_id, "plan": "x"}))[0]
        is Verdict.MISMATCH
    )
    other = OrderFacts(ORDER.order_id, ORDER.kind, ORDER.status, "start", ORDER.amount, "RUB", "p0")
    assert judge(other, payment())[0] is Verdict.MISMATCH


def test_transitions() -> None:
    t = transition(OrderStatus.PENDING, OrderKind.NEW, Verdict.PAID, refund_suspends=True)
    assert t is not None and t.to is OrderStatus.PAID and t.actions == (Action.PROVISION,)
    t = transition(OrderStatus.PENDING, OrderKind.EXTEND, Verdict.PAID, refund_suspends=True)
    assert t is not None and t.actions == (Action.EXTEND,)
    assert (
        transition(OrderStatus.PAID, OrderKind.NEW, Verdict.CANCELED, refund_suspends=True) is None
    )
    assert transition(OrderStatus.PAID, OrderKind.NEW, Verdict.PAID, refund_suspends=True) is None
    t = transition(OrderStatus.PAID, OrderKind.NEW, Verdict.REFUNDED, refund_suspends=True)
    assert t is not None and t.actions == (Action.SUSPEND,)
    t = transition(OrderStatus.PAID, OrderKind.NEW, Verdict.REFUNDED, refund_suspends=False)
    assert t is not None and t.actions == ()
    t = transition(OrderStatus.CANCELED, OrderKind.NEW, Verdict.PAID, refund_suspends=True)
    assert t is not None and t.to is OrderStatus.PAID
    # A refunded upgrade never suspends (an earlier order paid the period): it switches back.
    for suspends in (True, False):
        t = transition(
            OrderStatus.PAID, OrderKind.UPGRADE, Verdict.REFUNDED, refund_suspends=suspends
        )
        assert t is not None and t.actions == (Action.REVERT_PLAN,)
    t = transition(OrderStatus.PENDING, OrderKind.UPGRADE, Verdict.REFUNDED, refund_suspends=True)
    assert t is not None and t.actions == ()  # never paid here, never switched
    t = transition(OrderStatus.PAID, OrderKind.RENEWAL, Verdict.REFUNDED, refund_suspends=True)
    assert t is not None and t.actions == (Action.SUSPEND,)  # as a refunded first payment
    assert (
        transition(OrderStatus.REFUNDED, OrderKind.NEW, Verdict.PAID, refund_suspends=True) is None
    )


@given(st.lists(st.sampled_from(list(Verdict)), max_size=20))
def test_paid_and_refunded_never_go_back(verdicts: list[Verdict]) -> None:
    status, provisions = OrderStatus.PENDING, 0
    seen: list[OrderStatus] = [status]
    for verdict in verdicts:
        moved = transition(status, OrderKind.NEW, verdict, refund_suspends=True)
        if moved is not None:
            status = moved.to
            provisions += moved.actions.count(Action.PROVISION)
            seen.append(status)
    assert provisions <= 1
    if OrderStatus.REFUNDED in seen:
        assert seen[-1] is OrderStatus.REFUNDED
    if OrderStatus.PAID in seen and OrderStatus.REFUNDED not in seen:
        assert seen[-1] is OrderStatus.PAID


def test_vault_binds_ciphertexts_to_their_context() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    vault = Vault(old)
    sealed = vault.seal("order:ord_1", "123:secret")
    assert "secret" not in sealed
    assert vault.open("order:ord_1", sealed) == "123:secret"
    with pytest.raises(VaultError):
        vault.open("order:ord_2", sealed)
    assert Vault(f"{new},{old}").open("order:ord_1", sealed) == "123:secret"  # rotation
    with pytest.raises(VaultError):
        Vault(new).open("order:ord_1", sealed)
