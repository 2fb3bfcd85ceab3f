"""The pure rating core: exact lines for proration, price changes, premium, credits, currencies."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.credits import CreditLine
from billing.periods import Period
from billing.rating import Prices, RatingError, TierSpan, UsageRow, rate_lines

NOV = Period.parse("2026-11")  # 30 days = 2,592,000 s
D = datetime(2026, 11, 1, tzinfo=UTC)


def eur(effective_from=datetime(2026, 1, 1, tzinfo=UTC), version_id=1, base=(4900, 9900), std="50", eff="30",
        acc="80.5", batch="20", premium="20"):
    return Prices(effective_from=effective_from, currency="EUR", base_fee_minor={"standard": base[0], "green": base[1]},
                  per_1k_minor={"standard": Decimal(std), "efficiency": Decimal(eff), "accurate": Decimal(acc)},
                  batch_per_1k_minor=Decimal(batch), green_premium_percent=Decimal(premium), version_id=version_id)


def whole(tier="standard"):
    return [TierSpan(NOV.start, NOV.end, tier)]


def row(day, hour, mode="standard", source="online", predictions=1000, energy_uj=3_600_000, co2e_ug=200_000):
    return UsageRow(D + timedelta(days=day - 1, hours=hour), mode, source, predictions, energy_uj, co2e_ug)


def summary(lines):
    return [(line.kind, line.mode, line.tier, line.quantity, line.unit_price_minor, line.unit_divisor,
             line.amount_minor, line.energy_uj, line.co2e_ug) for line in lines]


def test_full_month_standard_tier_lines_are_exact():
    usage = [row(1, 0, predictions=10_000), row(1, 1, predictions=2_500),  # standard: 12,500 x 50/1000 = 625
             row(2, 0, "efficiency", predictions=7_000),  # 7,000 x 30/1000 = 210
             row(3, 5, "accurate", predictions=1_001),  # 1,001 x 80.5/1000 = 80.5805 -> 81
             row(4, 0, "efficiency", "batch", predictions=50_000),  # batch: 50,000 x 20/1000 = 1000
             row(4, 1, "accurate", "batch", predictions=1_000)]  # batch, any mode: 20
    lines = rate_lines(period=NOV, currency="EUR", prices=[eur()], tier_spans=whole(), usage=usage)
    assert summary(lines) == [
        ("base_fee", "", "standard", Decimal("2592000"), Decimal(4900), 2_592_000, 4900, 0, 0),
        ("predictions", "standard", "standard", Decimal(12_500), Decimal(50), 1000, 625, 7_200_000, 400_000),
        ("predictions", "efficiency", "standard", Decimal(7_000), Decimal(30), 1000, 210, 3_600_000, 200_000),
        ("predictions", "accurate", "standard", Decimal(1_001), Decimal("80.5"), 1000, 81, 3_600_000, 200_000),
        ("batch_predictions", "", "standard", Decimal(51_000), Decimal(20), 1000, 1020, 7_200_000, 400_000),
    ]
    assert lines[0].description == "Base fee, standard tier (30 of 30 days)"
    assert [(line.span_start, line.span_end) for line in lines] == [(NOV.start, NOV.end)] * 5


def test_sub_minor_prices_round_only_the_line_not_each_row():
    # 720 hourly rows of 7 accurate predictions at 80.5 per 1,000: each row alone would be
    # 0.5635 -> 1 (720 in all); the line is 5,040 x 80.5 / 1,000 = 405.72 -> 406.
    usage = [UsageRow(D + timedelta(hours=h), "accurate", "online", 7, 1, 1) for h in range(720)]
    lines = rate_lines(period=NOV, currency="EUR", prices=[eur()], tier_spans=whole(), usage=usage)
    assert [(line.kind, line.quantity, line.amount_minor, line.energy_uj) for line in lines[1:]] == [
        ("predictions", Decimal(5040), 406, 720)]


def test_price_change_mid_period_splits_every_line_at_the_change():
    change = datetime(2026, 11, 16, tzinfo=UTC)
    v1, v2 = eur(version_id=1), eur(effective_from=change, version_id=2, base=(5900, 9900), std="60", batch="25")
    usage = [row(15, 23, predictions=1_000),  # the last hour before the change: old price
             row(16, 0, predictions=1_000),  # the first hour after: new price
             row(10, 0, "efficiency", "batch", predictions=3_000), row(20, 0, "efficiency", "batch", predictions=3_000)]
    lines = rate_lines(period=NOV, currency="EUR", prices=[v2, v1], tier_spans=whole(), usage=usage)
    assert [(line.kind, line.span_start.day, line.quantity, line.unit_price_minor, line.amount_minor,
             line.price_version_id)
            for line in lines] == [
        ("base_fee", 1, Decimal(1_296_000), Decimal(4900), 2450, 1),  # 15 of 30 days x 49.00
        ("predictions", 1, Decimal(1000), Decimal(50), 50, 1),
        ("batch_predictions", 1, Decimal(3000), Decimal(20), 60, 1),
        ("base_fee", 16, Decimal(1_296_000), Decimal(5900), 2950, 2),  # 15 of 30 days x 59.00
        ("predictions", 16, Decimal(1000), Decimal(60), 60, 2),
        ("batch_predictions", 16, Decimal(3000), Decimal(25), 75, 2),
    ]
    assert [(line.span_start, line.span_end) for line in lines][::3] == [(NOV.start, change), (change, NOV.end)]


def test_tier_change_prorates_base_fee_by_time_and_adds_premium_on_green_usage():
    switch = datetime(2026, 11, 11, 12, tzinfo=UTC)  # 10.5 days standard, 19.5 days green
    spans = [TierSpan(NOV.start, switch, "standard"), TierSpan(switch, NOV.end, "green")]
    usage = [row(5, 0, predictions=10_000),  # standard tier: 500, no premium
             row(11, 11, predictions=1_000),  # 11:00 hour starts before the 12:00 switch: standard
             row(11, 12, predictions=1_000),  # green from here
             row(20, 0, "accurate", predictions=4_000),  # 4,000 x 80.5/1000 = 322
             row(21, 0, "efficiency", "batch", predictions=10_000)]  # 200
    lines = rate_lines(period=NOV, currency="EUR", prices=[eur()], tier_spans=spans, usage=usage)
    assert [(line.kind, line.mode, line.tier, line.quantity, line.amount_minor) for line in lines] == [
        ("base_fee", "", "standard", Decimal(907_200), 1715),  # 907,200 / 2,592,000 x 4,900 = 1,715 exactly
        ("predictions", "standard", "standard", Decimal(11_000), 550),
        ("base_fee", "", "green", Decimal(1_684_800), 6435),  # 1,684,800 / 2,592,000 x 9,900 = 6,435
        ("predictions", "standard", "green", Decimal(1_000), 50),
        ("predictions", "accurate", "green", Decimal(4_000), 322),
        ("batch_predictions", "", "green", Decimal(10_000), 200),
        ("green_premium", "", "green", Decimal(572), 114),  # 20% of 50 + 322 + 200 = 114.4 -> 114
    ]
    assert lines[2].description == "Base fee, green tier (19.5 of 30 days)"
    assert lines[-1].description == "Green tier premium (20% of green-tier usage)"
    assert (lines[-1].span_start, lines[-1].span_end) == (switch, NOV.end)


def test_premium_rounds_half_up_and_follows_each_price_versions_percentage():
    change = datetime(2026, 11, 16, tzinfo=UTC)
    v1, v2 = eur(version_id=1, std="1234"), eur(effective_from=change, version_id=2, std="1234", premium="12.5")
    usage = [row(2, 0, predictions=1_000), row(20, 0, predictions=1_000)]  # 1,234 each
    lines = rate_lines(period=NOV, currency="EUR", prices=[v1, v2], tier_spans=whole("green"), usage=usage)
    premiums = [(line.quantity, line.unit_price_minor, line.amount_minor, line.price_version_id) for line in lines
                if line.kind == "green_premium"]
    # 20% of 1,234 = 246.8 -> 247; 12.5% of 1,234 = 154.25 -> 154
    assert premiums == [(Decimal(1234), Decimal(20), 247, 1), (Decimal(1234), Decimal("12.5"), 154, 2)]


def test_zero_decimal_currency_and_tenant_created_mid_period():
    jpy = Prices(effective_from=datetime(2026, 1, 1, tzinfo=UTC), currency="JPY",
                 base_fee_minor={"standard": 5000, "green": 8000},
                 per_1k_minor={"standard": Decimal("0.5"), "efficiency": Decimal("0.25"), "accurate": Decimal("1.5")},
                 batch_per_1k_minor=Decimal("0.2"), green_premium_percent=Decimal(20))
    created = datetime(2026, 11, 21, tzinfo=UTC)  # 10 of 30 days
    usage = [row(21, 0, predictions=1_500),  # 0.75 yen -> 1
             row(22, 0, "efficiency", predictions=2_000)]  # 0.5 yen -> 1 (half up)
    lines = rate_lines(period=NOV, currency="JPY", prices=[jpy], billable_start=created,
                       tier_spans=[TierSpan(created, NOV.end, "standard")], usage=usage)
    assert [(line.kind, line.quantity, line.amount_minor) for line in lines] == [
        ("base_fee", Decimal(864_000), 1667),  # 5,000 x 1/3 = 1,666.67
        ("predictions", Decimal(1500), 1),
        ("predictions", Decimal(2000), 1),
    ]


def test_sla_credits_are_negative_lines_after_the_charges():
    credit = CreditLine(description="SLA credit: availability 99.5% < 99.9%", amount_minor=-490,
                        span_start=NOV.start, span_end=NOV.end, reference="sla-evaluation:7")
    lines = rate_lines(period=NOV, currency="EUR", prices=[eur()], tier_spans=whole(), usage=[], credits=[credit])
    assert [(line.kind, line.quantity, line.unit_price_minor, line.unit_divisor, line.amount_minor, line.reference)
            for line in lines] == [
        ("base_fee", Decimal(2_592_000), Decimal(4900), 2_592_000, 4900, ""),
        ("sla_credit", Decimal(1), Decimal(-490), 1, -490, "sla-evaluation:7"),
    ]


def test_tier_change_at_microsecond_precision_keeps_exact_seconds():
    switch = datetime(2026, 11, 16, 0, 0, 0, 500_000, tzinfo=UTC)
    spans = [TierSpan(NOV.start, switch, "standard"), TierSpan(switch, NOV.end, "green")]
    lines = rate_lines(period=NOV, currency="EUR", prices=[eur()], tier_spans=spans, usage=[])
    # 1,296,000.5 s x 4,900 / 2,592,000 = 2,450.0009 -> 2,450; 1,295,999.5 s x 9,900 / ... = 4,949.998 -> 4,950
    assert [(line.quantity, line.amount_minor) for line in lines] == [(Decimal("1296000.5"), 2450),
                                                              (Decimal("1295999.5"), 4950)]


def test_errors_name_the_problem():
    with pytest.raises(RatingError, match="no EUR price in effect at 2026-11-01 00:00Z"):
        rate_lines(period=NOV, currency="EUR", prices=[eur(effective_from=datetime(2026, 11, 2, tzinfo=UTC))],
                   tier_spans=whole(), usage=[])
    with pytest.raises(RatingError, match="outside period 2026-11"):
        rate_lines(period=NOV, currency="EUR", prices=[eur()], tier_spans=whole(),
                   usage=[UsageRow(NOV.end, "standard", "online", 1, 1, 1)])
    with pytest.raises(RatingError, match="unknown mode 'turbo'"):
        rate_lines(period=NOV, currency="EUR", prices=[eur()], tier_spans=whole(), usage=[row(1, 0, "turbo")])


def test_tenant_created_after_the_period_has_no_lines():
    assert rate_lines(period=NOV, currency="EUR", prices=[eur()], tier_spans=[], usage=[],
                      billable_start=NOV.end) == []
